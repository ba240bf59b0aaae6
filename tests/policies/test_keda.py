"""kubernetes-keda-scaledobject-floor: a bounded ScaledObject with a floor passes; each way to reach zero is caught."""

from __future__ import annotations

import pytest

from policies.kubernetes.keda.scaledobject_floor import SCALED_OBJECT, kubernetes_keda_scaledobject_floor
from tests.policies.support import DELETE, mutate, validate_resource

POLICY = kubernetes_keda_scaledobject_floor
# As the engine hands it over: numbers are floats.
SCALED = {
    "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
    "metadata": {"name": "digits", "namespace": "vision", "labels": {"ai-platform.io/team": "vision"}},
    "spec": {"scaleTargetRef": {"name": "digits-predictor"}, "minReplicaCount": 1.0, "maxReplicaCount": 4.0,
             "triggers": [{"type": "prometheus", "metadata": {"query": "sum(up)", "threshold": "4"}}]},
}
ZERO = ("ScaledObject 'res' scales to zero: its minReplicaCount {}; the next request after idling waits for a node "
        "and the model to load. Keep at least 1 replica here.")


def test_a_bounded_scaled_object_with_a_floor_passes():
    assert validate_resource(POLICY, SCALED_OBJECT, SCALED) == []


@pytest.mark.parametrize(("path", "value", "message"), [
    ("spec.minReplicaCount", 0.0, ZERO.format("is 0")),
    ("spec.minReplicaCount", DELETE, ZERO.format("is not set (KEDA's default is 0)")),
    ("spec.idleReplicaCount", 0.0,
     "ScaledObject 'res' scales to zero when idle: its idleReplicaCount is 0. Remove it here."),
    ("metadata.annotations", {"autoscaling.keda.sh/paused-replicas": "0"},
     "ScaledObject 'res' is paused at 0 replicas (autoscaling.keda.sh/paused-replicas)."),
], ids=["min-zero", "min-default", "idle-zero", "paused-at-zero"])
def test_each_way_to_zero_is_reported_unless_the_environment_allows_it(path, value, message):
    broken = mutate(SCALED, path, value)
    assert validate_resource(POLICY, SCALED_OBJECT, broken) == [message]
    assert validate_resource(POLICY, SCALED_OBJECT, broken, config={"allowScaleToZero": True}) == []


@pytest.mark.parametrize(("path", "value", "message"), [
    ("spec.maxReplicaCount", DELETE, "ScaledObject 'res' has no maxReplicaCount: KEDA would scale it to 100 replicas."),
    ("spec.minReplicaCount", 6.0, "ScaledObject 'res' has minReplicaCount 6 above maxReplicaCount 4."),
], ids=["no-max", "min-above-max"])
def test_a_scaled_object_needs_a_ceiling_above_its_floor_even_where_zero_is_allowed(path, value, message):
    broken = mutate(SCALED, path, value)
    assert validate_resource(POLICY, SCALED_OBJECT, broken, config={"allowScaleToZero": True}) == [message]


def test_other_resources_and_a_paused_floor_above_zero_pass():
    assert validate_resource(POLICY, "kubernetes:apps/v1:Deployment", {"spec": {}}) == []
    paused = mutate(SCALED, "metadata.annotations", {"autoscaling.keda.sh/paused-replicas": "2"})
    assert validate_resource(POLICY, SCALED_OBJECT, paused) == []


@pytest.mark.parametrize("value", ["abc", "4Gi", float("inf"), float("nan"), -1.0, 1.5, True, {}], ids=repr)
def test_a_replica_count_that_is_no_whole_number_is_reported_not_raised(value):
    for key in ("minReplicaCount", "maxReplicaCount", "idleReplicaCount"):
        messages = validate_resource(POLICY, SCALED_OBJECT, mutate(SCALED, f"spec.{key}", value),
                                     config={"allowScaleToZero": True})
        assert len(messages) == 1
        assert messages[0].startswith(f"ScaledObject 'res' has {key} '")
        assert messages[0].endswith("', not a whole number of replicas.")


def test_an_infinite_floor_above_the_ceiling_is_not_compared():
    # minReplicaCount inf used to reach int(inf) in the min-above-max message.
    messages = validate_resource(POLICY, SCALED_OBJECT, mutate(SCALED, "spec.minReplicaCount", "inf"))
    assert messages == ["ScaledObject 'res' has minReplicaCount 'inf', not a whole number of replicas."]
