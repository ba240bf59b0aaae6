"""How KEDA scales a model: one ScaledObject per predictor Deployment, reading the platform's recording rules.

A model whose `autoscaling.metric` is a serving metric (requests in flight, requests per second, TorchServe's
queue time, KServe's predict p95) is scaled by KEDA; `cpu` and `memory` stay with the HPA KServe creates itself.
The InferenceService then carries `serving.kserve.io/autoscalerClass: external`: KServe 0.20 creates no HPA and
leaves the Deployment's replicas alone, and KEDA owns the HPA that moves them.
https://github.com/kserve/kserve/blob/v0.20.0/pkg/controller/v1beta1/inferenceservice/reconcilers/hpa/hpa_reconciler.go
https://keda.sh/docs/2.20/reference/scaledobject-spec/
https://keda.sh/docs/2.20/scalers/prometheus/

The query reads the one-minute series of `inference.rules.yaml` (group aip-inference-scaling) for the model's
InferenceService in the team's namespace, with `or vector(0)`: a model at zero replicas, or one that has not
answered a request yet, exports nothing and reads 0. So an idle model is inactive and, where it may, idles at
zero after the cooldown. Nothing in front of a Standard-mode predictor holds a request while a replica starts,
so a model at zero is woken by its `wakeSchedule` (KEDA's cron scaler), not by a request.

No TriggerAuthentication: the platform's Prometheus answers in-cluster queries without credentials, so there is
no secret to carry, and KEDA keeps no read access to the cluster's Secrets (keda.py).

A canary (KServe 0.20 `spec.canary`, Standard mode) runs as a Deployment of its own, `<model>-canary-predictor`,
which KServe does not scale under the external class: it gets its own ScaledObject. Both read the whole
InferenceService's value; for per-replica metrics each threshold is the target divided by the Deployment's traffic
share, so both Deployments hold the target per replica and keep the split.
https://github.com/kserve/kserve/blob/v0.20.0/pkg/controller/v1beta1/inferenceservice/components/predictor.go
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from infra.config.serving import ModelDeployment

SCALED_OBJECT_API_VERSION, SCALED_OBJECT_KIND = "keda.sh/v1alpha1", "ScaledObject"
# The canary predictor's name in the InferenceService (KServe names its Deployment `<model>-<name>-predictor`).
CANARY_PREDICTOR = "canary"
# How often KEDA asks Prometheus whether a model at zero has become active (the HPA asks every 15 s itself).
POLLING_INTERVAL_S = 15
# How long a model stays idle before KEDA takes it to zero: a cold start costs minutes (a GPU node, the image, the
# model), so short lulls keep their replica.
COOLDOWN_S = 900
# Scaling in: at most one replica a minute, once the load has been lower for five minutes.
SCALE_DOWN_STABILIZATION_S = 300
# Reads Prometheus failed this often in a row: KEDA holds the model at its current replicas, or at its floor if that
# is more (fallback), instead of scaling on a value it does not have.
FALLBACK_FAILURES = 3


@dataclass(frozen=True)
class ScalingSeries:
    """What KEDA reads for one metric.

    Attributes:
        record: The recorded series (labels team, namespace, inferenceservice, and model_name for latencies).
        aggregation: `sum` for amounts the InferenceService's pods add up to, `max` for a latency.
        factor: Multiplier into the metric's unit (the rules record seconds; targets are in milliseconds).
        metric_type: `AverageValue` (the value divided by the replicas) or `Value` (the value itself).
    """

    record: str
    aggregation: str
    factor: int
    metric_type: str


SCALING_SERIES: dict[str, ScalingSeries] = {
    "concurrency": ScalingSeries("team:aip_inference_concurrency:rate1m", "sum", 1, "AverageValue"),
    "requests-per-second": ScalingSeries("team:aip_inference_requests:rate1m", "sum", 1, "AverageValue"),
    "queue-time-ms": ScalingSeries("team:aip_torchserve_queue_latency_seconds:mean1m", "max", 1000, "Value"),
    "p95-latency-ms": ScalingSeries("team:aip_kserve_predict_latency_seconds:p95_1m", "max", 1000, "Value"),
}


def _series(model: ModelDeployment) -> ScalingSeries:
    metric = model.scaling.metric
    if metric not in SCALING_SERIES:
        raise ValueError(f"model {model.name} scales on {metric}, which KServe's HPA reads, not KEDA")
    return SCALING_SERIES[metric]


def scaling_query(team: str, model: ModelDeployment) -> str:
    """The PromQL KEDA evaluates: one value for the model's InferenceService in the team's namespace, 0 when idle."""
    series = _series(model)
    value = f'{series.aggregation}({series.record}{{namespace="{team}", inferenceservice="{model.name}"}})'
    if series.factor != 1:
        value += f" * {series.factor}"
    return f"{value} or vector(0)"


def predictor_deployment(model: str, predictor: str | None = None) -> str:
    """The Deployment KServe 0.20 runs a predictor in: `<model>-predictor`, `<model>-<predictor name>-predictor`."""
    return f"{model}-{predictor}-predictor" if predictor else f"{model}-predictor"


def predictor_deployments(model: ModelDeployment) -> dict[str, float]:
    """Each predictor Deployment of the model with its share of the traffic."""
    if model.canary is None:
        return {predictor_deployment(model.name): 1.0}
    canary = model.canary.traffic_percent / 100
    return {predictor_deployment(model.name): 1 - canary,
            predictor_deployment(model.name, CANARY_PREDICTOR): canary}


def _canary_part(total: int, share: float) -> int:
    """The canary's replicas of ``total`` (at least 2): its traffic share rounded up, leaving the stable version one."""
    return min(max(math.ceil(total * share), 1), total - 1)


def replica_bounds(model: ModelDeployment, deployment: str) -> tuple[int, int]:
    """(min, max) replicas of one predictor Deployment: the model's, or with a canary split between the versions.

    The canary gets its traffic share of the model's max rounded up and the stable version the rest, at least one
    replica each, so the two together never exceed the model's max (what the team's GPU quota was checked against;
    a canary needs a max of 2, ModelDeployment). The floor is split the same way; a model that keeps a replica keeps
    one of each version (a floor of 1 becomes one each), and one idling at zero idles both.
    """
    scaling = model.scaling
    if model.canary is None:
        return scaling.min, scaling.max
    if scaling.max < 2:
        raise ValueError(f"model {model.name} has a canary but a max of {scaling.max} replica: each version needs one")
    share = predictor_deployments(model)[predictor_deployment(model.name, CANARY_PREDICTOR)]
    canary_max = _canary_part(scaling.max, share)
    if scaling.min == 0:
        canary_min = stable_min = 0
    elif scaling.min == 1:
        canary_min = stable_min = 1
    else:
        canary_min = _canary_part(scaling.min, share)
        stable_min = scaling.min - canary_min
    if deployment == predictor_deployment(model.name, CANARY_PREDICTOR):
        return canary_min, canary_max
    return stable_min, scaling.max - canary_max


def _threshold(value: float) -> str:
    # KEDA reads trigger metadata as strings; six significant digits are finer than any target a team sets.
    return f"{value:.6g}"


def _behavior() -> dict[str, Any]:
    """The HPA's behavior; scaling out keeps the HPA's default (at once, by up to double or four pods per 15 s)."""
    return {"scaleDown": {"stabilizationWindowSeconds": SCALE_DOWN_STABILIZATION_S,
                          "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]}}


def scaled_object_manifest(team: str, model: ModelDeployment, prometheus_url: str, *, deployment: str,
                           scale_to_zero_allowed: bool) -> dict[str, Any] | None:
    """The ScaledObject of one predictor Deployment of the model; None when KServe's HPA scales it (cpu, memory).

    Args:
        team: The team, whose namespace holds the model.
        model: The model's entry in the team config.
        prometheus_url: The platform's in-cluster Prometheus (platform output `prometheusUrl`).
        deployment: A Deployment of :func:`predictor_deployments`.
        scale_to_zero_allowed: The platform's `autoscaling.scaleToZero`; a model with min 0 is refused without it.

    Raises:
        ValueError: the Deployment is not one of the model's, or the model asks for zero where it may not.
    """
    scaling = model.scaling
    if not scaling.uses_keda:
        return None
    shares = predictor_deployments(model)
    if deployment not in shares:
        raise ValueError(f"{deployment} is not a predictor Deployment of model {model.name}: {', '.join(shares)}")
    if scaling.min == 0 and not scale_to_zero_allowed:
        raise ValueError(f"model {model.name} may not idle at zero replicas: the platform does not allow it")
    series = _series(model)
    minimum, maximum = replica_bounds(model, deployment)
    # Per replica: the Deployment's share of the InferenceService's total, at the target per replica.
    threshold = scaling.target / shares[deployment] if series.metric_type == "AverageValue" else scaling.target
    triggers: list[dict[str, Any]] = [{
        "type": "prometheus", "name": scaling.metric, "metricType": series.metric_type,
        "metadata": {"serverAddress": prometheus_url, "query": scaling_query(team, model),
                     "threshold": _threshold(threshold),
                     # The query always answers (`or vector(0)`): an empty answer means it is broken, and KEDA
                     # falls back rather than scale on a 0 it never read.
                     "ignoreNullValues": "false"},
    }]
    if minimum == 0 and scaling.wake_schedule is not None:
        wake = scaling.wake_schedule
        triggers.append({"type": "cron", "name": "wake-schedule", "metadata": {
            "timezone": wake.timezone, "start": wake.start, "end": wake.end, "desiredReplicas": "1"}})
    return {
        "apiVersion": SCALED_OBJECT_API_VERSION, "kind": SCALED_OBJECT_KIND,
        "metadata": {"name": deployment, "namespace": team},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment},
            "minReplicaCount": minimum,
            "maxReplicaCount": maximum,
            "pollingInterval": POLLING_INTERVAL_S,
            "cooldownPeriod": COOLDOWN_S,
            "triggers": triggers,
            "fallback": {"failureThreshold": FALLBACK_FAILURES, "replicas": max(minimum, 1),
                         "behavior": "currentReplicasIfHigher"},
            "advanced": {"horizontalPodAutoscalerConfig": {"behavior": _behavior()}},
        },
    }
