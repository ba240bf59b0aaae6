"""Failover: disruption budgets, zone spread and draining, as decisions and on the previewed prod graphs."""

from __future__ import annotations

from typing import Any

import pytest

from infra.components import failover, monitoring
from infra.components.failover import DrainTiming, disruption_budget_spec, disruption_min_available, drain_timing
from infra.components.inference_service import ISVC_POD_LABEL, disruption_budget, inference_service_manifest
from infra.components.team_workspace import TEAM_STACK_RESOURCES
from infra.config.observability import MetricsConfig
from infra.config.serving import ModelDeployment
from infra.serving.catalog import MODEL_HANDLERS, Catalog
from tests.conftest import only

LABELS = {"app": "x"}
RELEASE = "kubernetes:helm.sh/v3:Release"
ISVC = "kubernetes:serving.kserve.io/v1beta1:InferenceService"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"


@pytest.fixture(autouse=True)
def _known_models(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("infra.config.serving.model_names", lambda: ("digits", "ranker"))


def deployment(**kw: Any) -> ModelDeployment:
    return ModelDeployment.model_validate({"name": "digits", **kw})


@pytest.mark.parametrize(("replicas", "expected"), [(1, None), (2, 1), (3, 1), (8, 1)])
def test_a_budget_only_for_several_replicas(replicas, expected):
    assert disruption_min_available(replicas) == expected
    spec = disruption_budget_spec(LABELS, replicas)
    if expected is None:
        assert spec is None
    else:
        assert spec == {"minAvailable": 1, "selector": {"matchLabels": LABELS},
                        "unhealthyPodEvictionPolicy": "AlwaysAllow"}


@pytest.mark.parametrize(("replicas", "constraints"), [(1, 0), (2, 1), (5, 1)])
def test_zone_spread_prefers_zones_but_never_blocks_scheduling(replicas, constraints):
    spread = failover.zone_spread(LABELS, replicas)
    assert len(spread) == constraints
    for constraint in spread:
        assert constraint == {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                              "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": {"matchLabels": LABELS}}


@pytest.mark.parametrize("bad", [0, -1])
def test_replicas_below_one_are_refused(bad):
    with pytest.raises(ValueError):
        disruption_min_available(bad)
    with pytest.raises(ValueError):
        failover.zone_spread(LABELS, bad)


@pytest.mark.parametrize(("runtime", "timeout", "sleep", "grace"), [
    # TorchServe is not trusted to drain after SIGTERM: preStop covers endpoint removal and the whole timeout.
    ("torchserve", 30, 35, 45),
    ("torchserve", 120, 125, 135),
    ("torchserve", 1, 6, 16),
    # KServe (uvicorn) drains up to 30 s after SIGTERM: preStop only waits for the endpoint removal...
    ("kserve", 30, 5, 45),
    ("kserve", 10, 5, 25),
    # ...plus the part of a longer timeout that uvicorn's grace period would cut off.
    ("kserve", 120, 95, 135),
])
def test_drain_timing_is_sized_to_the_response_timeout(runtime, timeout, sleep, grace):
    timing = drain_timing(runtime, timeout)
    assert timing == DrainTiming(sleep, grace)
    # A request accepted just before the endpoint removal has its whole timeout before SIGKILL.
    assert timing.termination_grace_s >= failover.ENDPOINT_PROPAGATION_S + timeout
    assert timing.pre_stop() == {"preStop": {"sleep": {"seconds": sleep}}}


@pytest.mark.parametrize(("runtime", "timeout"), [("triton", 30), ("kserve", 0)])
def test_drain_timing_refuses_unknown_runtimes_and_empty_timeouts(runtime, timeout):
    with pytest.raises(ValueError):
        drain_timing(runtime, timeout)


@pytest.mark.parametrize(("min_replicas", "max_replicas", "budget", "spread"), [
    (1, 1, False, False), (1, 3, False, True), (2, 8, True, True), (3, 3, True, True)])
def test_inference_service_budget_and_spread(min_replicas, max_replicas, budget, spread):
    model = deployment(minReplicas=min_replicas, maxReplicas=max_replicas)
    predictor = inference_service_manifest("vision", model, "s3://b/p/", None, None, 30)["spec"]["predictor"]
    assert (disruption_budget(model) is not None) is budget
    assert ("topologySpreadConstraints" in predictor) is spread
    if budget:
        assert disruption_budget(model)["selector"] == {"matchLabels": {ISVC_POD_LABEL: "digits"}}


KARPENTER_POOL = {"name": "inference-l4", "provisioner": "karpenter"}
MANAGED_POOL = {"name": "inference-l4", "provisioner": "managed"}


@pytest.mark.parametrize(("scaling", "pool", "min_available"), [
    ({"metric": "concurrency", "target": 2, "min": 0, "max": 2}, KARPENTER_POOL, 1),
    ({"metric": "concurrency", "target": 2, "min": 1, "max": 2}, KARPENTER_POOL, 1),
    ({"metric": "concurrency", "target": 2, "min": 0, "max": 2}, MANAGED_POOL, None),
    ({"metric": "concurrency", "target": 2, "min": 1, "max": 4}, MANAGED_POOL, None),
    ({"metric": "concurrency", "target": 2, "min": 1, "max": 4}, None, None),
    ({"metric": "requests-per-second", "target": 5, "min": 2, "max": 4}, MANAGED_POOL, 1),
], ids=["karpenter-idle", "karpenter-one", "managed-idle", "managed-one", "cpu-one", "managed-two"])
def test_a_karpenter_pool_keeps_even_a_single_replica_from_consolidation(scaling, pool, min_available):
    budget = disruption_budget(deployment(autoscaling=scaling), pool)
    assert (budget or {}).get("minAvailable") == min_available
    if budget is not None:
        assert budget["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
        assert budget["selector"] == {"matchLabels": {ISVC_POD_LABEL: "digits"}}


def test_keep_last_gives_a_budget_to_a_single_replica_only_when_asked():
    assert disruption_budget_spec(LABELS, 1) is None
    assert disruption_budget_spec(LABELS, 1, keep_last=True)["minAvailable"] == 1
    assert disruption_budget_spec(LABELS, 3, keep_last=True)["minAvailable"] == 1


@pytest.mark.parametrize("runtime", ["torchserve", "kserve"])
def test_predictor_drains_for_its_response_timeout(runtime):
    extra = {"image": "registry.example.com/digits:1.2.3"} if runtime == "kserve" else {}
    model = deployment(runtime=runtime, **extra)
    predictor = inference_service_manifest("vision", model, "s3://b/p/", None, None, 30)["spec"]["predictor"]
    timing = drain_timing(runtime, 30)
    container = predictor["model"] if runtime == "torchserve" else predictor["containers"][0]
    assert container["lifecycle"] == timing.pre_stop()
    assert predictor["terminationGracePeriodSeconds"] == timing.termination_grace_s


def test_team_ci_may_write_disruption_budgets():
    assert "poddisruptionbudgets" in TEAM_STACK_RESOURCES["policy"]


@pytest.mark.parametrize(("replicas", "enabled"), [(1, False), (2, True)])
def test_prometheus_and_alertmanager_budget_and_spread(replicas, enabled):
    config = MetricsConfig.model_validate({"retentionDays": 7, "storageGib": 50, "replicas": replicas})
    values = monitoring.metrics_stack_values(config, "gp3", "c")
    for component, spec_key in (("prometheus", "prometheusSpec"), ("alertmanager", "alertmanagerSpec")):
        assert values[component]["podDisruptionBudget"]["enabled"] is enabled
        assert values[component]["podDisruptionBudget"]["minAvailable"] == 1
        assert bool(values[component][spec_key]["topologySpreadConstraints"]) is enabled
    assert values["grafana"]["replicas"] == 1 and "podDisruptionBudget" not in values["grafana"]


# On the previewed graphs: every serving workload that runs more than one replica has both.

def test_prod_metrics_stack_runs_replicas_with_a_budget_and_zone_spread(preview):
    release = next(r for r in preview("prod").of_type(RELEASE) if r.inputs["name"] == monitoring.RELEASE_NAME)
    values = release.inputs["values"]
    for component, spec_key in (("prometheus", "prometheusSpec"), ("alertmanager", "alertmanagerSpec")):
        assert values[component][spec_key]["replicas"] > 1
        assert values[component]["podDisruptionBudget"] == {"enabled": True, "minAvailable": 1}
        [spread] = values[component][spec_key]["topologySpreadConstraints"]
        assert spread["topologyKey"] == "topology.kubernetes.io/zone"
    assert values["grafana"]["replicas"] == 1


def test_prod_elasticsearch_keeps_ecks_budget_and_spreads_over_zones(preview):
    es = only(preview("prod"), "kubernetes:elasticsearch.k8s.elastic.co/v1:Elasticsearch").inputs["spec"]
    [node_set] = es["nodeSets"]
    assert node_set["count"] > 1
    # ECK's default budget (evictions only while the cluster is green) applies unless the spec overrides it.
    assert "podDisruptionBudget" not in es
    [spread] = node_set["podTemplate"]["spec"]["topologySpreadConstraints"]
    assert spread["topologyKey"] == "topology.kubernetes.io/zone"


def test_prod_kserve_controller_runs_one_replica_without_a_budget(preview):
    release = next(r for r in preview("prod").of_type(RELEASE) if r.inputs["name"] == "kserve")
    controller = release.inputs["values"]["kserve"]["controller"]
    assert "replicas" not in controller and "podDisruptionBudget" not in controller


def test_vision_prod_model_has_a_budget_zone_spread_and_drains(preview):
    result = preview("vision-prod")
    isvc = only(result, ISVC).inputs
    name, predictor = isvc["metadata"]["name"], isvc["spec"]["predictor"]
    assert predictor["minReplicas"] > 1
    budget = only(result, PDB).inputs
    assert (budget["metadata"]["name"], budget["metadata"]["namespace"]) == (name, "vision")
    assert budget["spec"]["minAvailable"] == 1
    assert budget["spec"]["selector"] == {"matchLabels": {ISVC_POD_LABEL: name}}
    [spread] = predictor["topologySpreadConstraints"]
    assert spread["topologyKey"] == "topology.kubernetes.io/zone"
    assert spread["labelSelector"] == {"matchLabels": {ISVC_POD_LABEL: name}}
    timeout = Catalog(MODEL_HANDLERS).load(name).config.response_timeout
    timing = drain_timing("torchserve", timeout)
    assert predictor["model"]["lifecycle"] == timing.pre_stop()
    assert predictor["terminationGracePeriodSeconds"] == timing.termination_grace_s


def test_team_stacks_have_a_budget_exactly_for_models_with_several_replicas_or_on_karpenter(preview):
    from tests.infra.test_stacks import TEAM_STACKS

    for stack in TEAM_STACKS:
        result = preview(stack)
        pools = preview(stack.split("-")[1]).outputs["gpuPools"]
        karpenter = {p["name"] for p in pools if p["provisioner"] == "karpenter"}
        predictors = {r.inputs["metadata"]["name"]: r.inputs["spec"]["predictor"] for r in result.of_type(ISVC)}
        expected = {name for name, predictor in predictors.items() if predictor["minReplicas"] > 1
                    or predictor.get("nodeSelector", {}).get("ai-platform.io/gpu-pool") in karpenter}
        assert {r.inputs["metadata"]["name"] for r in result.of_type(PDB)} == expected, stack
    # vision-dev's model idles at zero on dev's Karpenter pool, and still keeps its last replica from consolidation.
    budget = only(preview("vision-dev"), PDB).inputs["spec"]
    assert (budget["minAvailable"], budget["unhealthyPodEvictionPolicy"]) == (1, "AlwaysAllow")
