"""Model autoscaling with KEDA: the scaling queries, the ScaledObjects (checked against KEDA's CRD), the
InferenceService handing its replicas to KEDA, and the platform's scale-to-zero switch in team stacks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from infra.components.inference_service import inference_service_manifest
from infra.components.model_autoscaling import (
    SCALING_SERIES,
    predictor_deployments,
    replica_bounds,
    scaled_object_manifest,
    scaling_query,
)
from infra.components.monitoring import PROMETHEUS_URL
from infra.config import ConfigError, parse_stack_config
from infra.config.serving import ModelDeployment
from infra.graph_checks.graph import ResourceGraph
from infra.observability.known_series import unknown_series
from infra.observability.rules import recorded_metrics
from infra.team_stack import scale_to_zero
from tests.conftest import aip, only
from tests.crd_schemas import validate_custom_resource

URI = "s3://models/teams/vision/models/digits/0123456789ab/"
STABLE = "s3://models/teams/vision/models/digits/ba9876543210/"
CONCURRENCY = {"metric": "concurrency", "target": 2, "min": 1, "max": 4}


@pytest.fixture(autouse=True)
def known_models(monkeypatch):
    monkeypatch.setattr("infra.config.serving.model_names", lambda: ("digits", "ranker"))


def deployment(**kw: Any) -> ModelDeployment:
    return ModelDeployment.model_validate({"name": "digits", **kw})


def scaled(model: ModelDeployment, target: str = "digits-predictor", allowed: bool = True) -> dict[str, Any]:
    manifest = scaled_object_manifest("vision", model, PROMETHEUS_URL, deployment=target, scale_to_zero_allowed=allowed)
    assert manifest is not None
    return manifest


# -- the queries ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("metric", "runtime", "expected"), [
    ("concurrency", "torchserve",
     'sum(team:aip_inference_concurrency:rate1m{namespace="vision", inferenceservice="digits"}) or vector(0)'),
    ("requests-per-second", "kserve",
     'sum(team:aip_inference_requests:rate1m{namespace="vision", inferenceservice="digits"}) or vector(0)'),
    ("queue-time-ms", "torchserve",
     'max(team:aip_torchserve_queue_latency_seconds:mean1m{namespace="vision", inferenceservice="digits"}) * 1000 '
     "or vector(0)"),
    ("p95-latency-ms", "kserve",
     'max(team:aip_kserve_predict_latency_seconds:p95_1m{namespace="vision", inferenceservice="digits"}) * 1000 '
     "or vector(0)"),
])
def test_each_metric_reads_its_recorded_series_for_the_model_and_zero_when_idle(metric, runtime, expected):
    image = {"image": "registry.example.com/vision/digits:1.4.2"} if runtime == "kserve" else {}
    model = deployment(runtime=runtime, autoscaling={"metric": metric, "target": 100, "min": 1, "max": 3}, **image)
    assert scaling_query("vision", model) == expected


def test_every_scaling_series_is_recorded_with_the_labels_the_query_filters_on():
    assert {series.record for series in SCALING_SERIES.values()} <= recorded_metrics()
    for metric in SCALING_SERIES:
        runtime = {"p95-latency-ms": "kserve"}.get(metric, "torchserve")
        image = {"image": "registry.example.com/vision/digits:1.4.2"} if runtime == "kserve" else {}
        model = deployment(runtime=runtime, autoscaling={"metric": metric, "target": 1}, **image)
        assert unknown_series(scaling_query("vision", model)) == [], metric


def test_cpu_and_memory_stay_with_kserves_hpa():
    model = deployment(autoscaling={"metric": "cpu", "target": 70, "min": 1, "max": 3})
    assert scaled_object_manifest("vision", model, PROMETHEUS_URL, deployment="digits-predictor",
                                  scale_to_zero_allowed=True) is None
    with pytest.raises(ValueError, match="KServe's HPA"):
        scaling_query("vision", model)
    # The legacy keys are the HPA's too.
    assert scaled_object_manifest("vision", deployment(minReplicas=2), PROMETHEUS_URL,
                                  deployment="digits-predictor", scale_to_zero_allowed=True) is None


# -- the ScaledObject -------------------------------------------------------------------------------------------


def test_a_concurrency_model_scales_its_predictor_deployment_per_replica():
    manifest = scaled(deployment(autoscaling=CONCURRENCY))
    spec = manifest["spec"]
    assert manifest["metadata"] == {"name": "digits-predictor", "namespace": "vision"}
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "digits-predictor"}
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (1, 4)
    [trigger] = spec["triggers"]
    assert (trigger["type"], trigger["metricType"]) == ("prometheus", "AverageValue")
    assert trigger["metadata"] == {
        "serverAddress": "http://kube-prometheus-stack-prometheus.monitoring.svc.cluster.local:9090",
        "query": scaling_query("vision", deployment(autoscaling=CONCURRENCY)), "threshold": "2",
        "ignoreNullValues": "false"}
    assert spec["fallback"] == {"failureThreshold": 3, "replicas": 1, "behavior": "currentReplicasIfHigher"}
    down = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]
    assert down["stabilizationWindowSeconds"] == 300
    validate_custom_resource(manifest)


def test_a_latency_target_is_the_models_value_in_milliseconds():
    model = deployment(runtime="kserve", image="registry.example.com/vision/digits:1.4.2",
                       autoscaling={"metric": "p95-latency-ms", "target": 250, "min": 2, "max": 6})
    [trigger] = scaled(model)["spec"]["triggers"]
    assert (trigger["metricType"], trigger["metadata"]["threshold"]) == ("Value", "250")
    assert trigger["metadata"]["query"].endswith(" * 1000 or vector(0)")
    assert scaled(model)["spec"]["fallback"]["replicas"] == 2


def test_a_model_that_idles_at_zero_wakes_on_its_schedule():
    model = deployment(autoscaling={"metric": "concurrency", "target": 2, "min": 0, "max": 2,
                                    "wakeSchedule": {"start": "0 7 * * 1-5", "end": "0 19 * * 1-5",
                                                     "timezone": "Europe/Berlin"}})
    manifest = scaled(model)
    spec = manifest["spec"]
    assert spec["minReplicaCount"] == 0 and spec["cooldownPeriod"] == 900
    assert spec["triggers"][1] == {"type": "cron", "name": "wake-schedule", "metadata": {
        "timezone": "Europe/Berlin", "start": "0 7 * * 1-5", "end": "0 19 * * 1-5", "desiredReplicas": "1"}}
    # Reads that fail hold at least one replica, never zero.
    assert spec["fallback"]["replicas"] == 1
    validate_custom_resource(manifest)


def test_the_default_wake_schedule_is_filled_in_and_a_floor_needs_none():
    idle = scaled(deployment(autoscaling={"metric": "requests-per-second", "target": 5, "min": 0, "max": 2}))
    assert [t["type"] for t in idle["spec"]["triggers"]] == ["prometheus", "cron"]
    assert idle["spec"]["triggers"][1]["metadata"]["start"] == "0 7 * * 1-5"
    assert [t["type"] for t in scaled(deployment(autoscaling=CONCURRENCY))["spec"]["triggers"]] == ["prometheus"]


def test_zero_replicas_need_the_platforms_consent():
    model = deployment(autoscaling={"metric": "concurrency", "target": 2, "min": 0, "max": 2})
    with pytest.raises(ValueError, match="may not idle at zero"):
        scaled(model, allowed=False)
    assert scaled(deployment(autoscaling=CONCURRENCY), allowed=False)["spec"]["minReplicaCount"] == 1


def test_a_deployment_of_another_model_is_refused():
    with pytest.raises(ValueError, match="not a predictor Deployment of model digits"):
        scaled(deployment(autoscaling=CONCURRENCY), target="ranker-predictor")


def test_the_crd_check_rejects_a_misspelt_field():
    manifest = scaled(deployment(autoscaling=CONCURRENCY))
    manifest["spec"]["minReplicas"] = 1
    with pytest.raises(jsonschema.ValidationError, match="minReplicas"):
        validate_custom_resource(manifest)


# -- canaries -------------------------------------------------------------------------------------------------


def test_a_canary_gets_its_own_scaled_object_and_both_keep_the_split():
    model = deployment(canary={"trafficPercent": 25, "stableVersion": "ba9876543210"},
                       autoscaling={"metric": "concurrency", "target": 3, "min": 4, "max": 8})
    assert predictor_deployments(model) == {"digits-predictor": 0.75, "digits-canary-predictor": 0.25}
    assert (replica_bounds(model, "digits-predictor"), replica_bounds(model, "digits-canary-predictor")) \
        == ((3, 6), (1, 2))
    stable, canary = scaled(model), scaled(model, "digits-canary-predictor")
    assert canary["spec"]["scaleTargetRef"]["name"] == "digits-canary-predictor"
    # Both read the whole InferenceService; each holds 3 requests in flight per replica at its share of traffic.
    assert stable["spec"]["triggers"][0]["metadata"]["query"] == canary["spec"]["triggers"][0]["metadata"]["query"]
    assert stable["spec"]["triggers"][0]["metadata"]["threshold"] == "4"
    assert canary["spec"]["triggers"][0]["metadata"]["threshold"] == "12"
    validate_custom_resource(canary)


def test_the_canary_deployment_is_the_one_kserve_names():
    model = deployment(canary={"trafficPercent": 10, "stableVersion": "ba9876543210"}, autoscaling=CONCURRENCY)
    canary = inference_service_manifest("vision", model, URI, STABLE, None)["spec"]["canary"][0]
    # KServe 0.20: constants.PredictorServiceName(isvc, predictor name) = <isvc>-<name>-predictor.
    assert f"digits-{canary['predictor']['name']}-predictor" in predictor_deployments(model)


def test_an_idle_canary_idles_too():
    model = deployment(canary={"trafficPercent": 10, "stableVersion": "ba9876543210"},
                       autoscaling={"metric": "concurrency", "target": 2, "min": 0, "max": 4})
    assert replica_bounds(model, "digits-predictor") == (0, 3)
    assert replica_bounds(model, "digits-canary-predictor") == (0, 1)
    assert [t["type"] for t in scaled(model, "digits-canary-predictor")["spec"]["triggers"]] == ["prometheus", "cron"]


@pytest.mark.parametrize("percent", [1, 10, 50, 99])
def test_a_canary_split_never_runs_more_replicas_than_the_model_may(percent):
    # The team's GPU quota is checked against the model's max: both Deployments together must stay within it.
    for high in range(2, 21):
        for low in range(high + 1):
            model = deployment(canary={"trafficPercent": percent, "stableVersion": "ba9876543210"},
                               autoscaling={"metric": "concurrency", "target": 2, "min": low, "max": high})
            (stable_min, stable_max), (canary_min, canary_max) = (
                replica_bounds(model, "digits-predictor"), replica_bounds(model, "digits-canary-predictor"))
            assert stable_max + canary_max == high and stable_max >= 1 and canary_max >= 1, (low, high)
            assert stable_min <= stable_max and canary_min <= canary_max, (low, high)
            # A floor is kept by each version (1 becomes one each), and an idle model idles both.
            assert stable_min + canary_min == (2 if low == 1 else low), (low, high)
            assert (stable_min == 0) == (canary_min == 0) == (low == 0), (low, high)


# -- the InferenceService -------------------------------------------------------------------------------------


def test_a_keda_model_hands_its_replicas_to_keda():
    model = deployment(autoscaling={"metric": "concurrency", "target": 2, "min": 0, "max": 2})
    manifest = inference_service_manifest("vision", model, URI, None, None)
    predictor = manifest["spec"]["predictor"]
    assert manifest["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] == "external"
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (0, 2)
    assert "scaleMetric" not in predictor and "scaleTarget" not in predictor
    validate_custom_resource(manifest)


def test_an_hpa_model_keeps_kserves_hpa_with_its_autoscaling():
    model = deployment(autoscaling={"metric": "memory", "target": 80, "min": 2, "max": 5})
    manifest = inference_service_manifest("vision", model, URI, None, None)
    predictor = manifest["spec"]["predictor"]
    assert manifest["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] == "hpa"
    assert (predictor["minReplicas"], predictor["maxReplicas"], predictor["scaleMetric"], predictor["scaleTarget"]) \
        == (2, 5, "memory", 80)


# -- the platform's scale-to-zero switch ------------------------------------------------------------------------


def team_config(models: list[dict[str, Any]]):
    values = {"aws:region": "us-east-1", "ai-platform:environment": "staging", "ai-platform:costCenter": "v",
              "ai-platform:dataClassification": "internal", "ai-platform:team": "vision",
              "ai-platform:platformStack": "acme/ai-platform/staging", "ai-platform:models": json.dumps(models)}
    return parse_stack_config(values, project="ai-platform", stack="vision-staging")


def test_a_model_at_zero_on_a_platform_without_scale_to_zero_is_a_config_error():
    config = team_config([{"name": "ranker"},
                          {"name": "digits", "autoscaling": {"metric": "concurrency", "target": 2, "min": 0}}])
    with pytest.raises(ConfigError) as caught:
        scale_to_zero(config, False)
    assert [p.render() for p in caught.value.problems] == [
        "ai-platform:models[1].autoscaling.min = 0: lets digits idle at zero replicas, which acme/ai-platform/staging "
        "does not allow (its autoscaling.scaleToZero is false): keep at least 1 replica"]
    assert scale_to_zero(config, True) is True
    assert scale_to_zero(team_config([{"name": "digits"}]), False) is False


@pytest.mark.integration
def test_the_team_stack_refuses_zero_where_its_platform_does(scratch_project: Path):
    path = scratch_project / "stacks" / "Pulumi.dev.yaml"
    data = yaml.safe_load(path.read_text())
    data["config"]["ai-platform:autoscaling"] = {"scaleToZero": False}
    path.write_text(yaml.safe_dump(data))
    run = aip("preview", "--stack", "vision-dev", "--no-package", cwd=scratch_project)
    assert run.returncode == 2, run.stderr
    assert run.stderr.strip().endswith(
        "ai-platform:models[0].autoscaling.min = 0: lets digits idle at zero replicas, which acme/ai-platform/dev does "
        "not allow (its autoscaling.scaleToZero is false): keep at least 1 replica")
    assert "Traceback" not in run.stderr


# -- the shipped stacks -----------------------------------------------------------------------------------------


SCALED_OBJECT = "kubernetes:keda.sh/v1alpha1:ScaledObject"


@pytest.mark.parametrize(("stack", "minimum", "triggers"), [("vision-dev", 0, ["prometheus", "cron"]),
                                                              ("vision-prod", 2, ["prometheus"])])
def test_shipped_team_stacks_scale_digits_with_keda_on_the_platforms_prometheus(preview, stack, minimum, triggers):
    result = preview(stack)
    platform = preview(stack.split("-")[1]).outputs
    scaler = only(result, SCALED_OBJECT)
    spec = scaler.inputs["spec"]
    assert scaler.inputs["metadata"]["name"] == "digits-predictor"
    assert spec["minReplicaCount"] == minimum and [t["type"] for t in spec["triggers"]] == triggers
    assert spec["triggers"][0]["metadata"]["serverAddress"] == platform["prometheusUrl"] == PROMETHEUS_URL
    # Created after the InferenceService whose Deployment it scales.
    isvc = only(result, "kubernetes:serving.kserve.io/v1beta1:InferenceService")
    assert ResourceGraph(result).waits_for_any(scaler, [isvc])
