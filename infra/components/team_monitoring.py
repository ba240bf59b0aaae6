"""A team's scrape configuration: a PodMonitor for the predictor pods of its InferenceServices.

The platform's Prometheus selects every PodMonitor of the cluster; the team's NetworkPolicies let it in
from the `monitoring` namespace on the metrics ports.
https://prometheus-operator.dev/docs/api-reference/api/#monitoring.coreos.com/v1.PodMonitor
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.components.inference_service import ISVC_POD_LABEL, METRICS_PORT, MODEL_VERSION_POD_LABEL, TRACK_POD_LABEL

POD_MONITOR_NAME = "inference-services"
# TorchServe serves its metrics on a port of their own (kserve.torchserve_runtime_spec names it); a
# KServe ModelServer serves `/metrics` on its HTTP port (inference_service.predictor_spec names it).
TORCHSERVE_METRICS_PORT_NAME = "metrics"
KSERVE_HTTP_PORT_NAME = "http"
# KEDA scales models on one-minute rates of these series (inference.rules.yaml, group aip-inference-scaling): at
# 15 s a window holds about four samples; at 30 s a late scrape would leave one, and the rate would vanish.
SCRAPE_INTERVAL = "15s"


def pod_label_meta(label: str) -> str:
    """The service-discovery label Prometheus gives a pod label."""
    return "__meta_kubernetes_pod_label_" + re.sub(r"[^a-zA-Z0-9_]", "_", label)


def target_relabelings(team: str) -> list[dict[str, Any]]:
    """`team` and `inferenceservice` on every series, and the pod's `track` and `model_version` (which canary
    analysis compares); the operator adds `namespace`, `pod` and `container`.

    A target label wins over a label of the same name the server exports (TorchServe's own `model_version` on its
    per-model series becomes `exported_model_version`); both name the packaged version, and the pod's label also
    reaches the host-level series (`Requests5XX`) that have none. A pod without the label (deployed before it
    existed) gets no target label, and keeps TorchServe's.
    """
    return [
        {"action": "replace", "targetLabel": "team", "replacement": team},
        {"action": "replace", "sourceLabels": [pod_label_meta(ISVC_POD_LABEL)], "targetLabel": "inferenceservice"},
        {"action": "replace", "sourceLabels": [pod_label_meta(TRACK_POD_LABEL)], "targetLabel": "track"},
        {"action": "replace", "sourceLabels": [pod_label_meta(MODEL_VERSION_POD_LABEL)],
         "targetLabel": "model_version"},
    ]


def pod_monitor_spec(team: str) -> dict[str, Any]:
    """Both runtimes' metrics endpoints on every InferenceService pod of the namespace.

    TorchServe pods also name their inference port `http`, where `/metrics` does not exist: the second
    endpoint keeps only pods whose `prometheus.io/port` annotation (inference_service.scrape_annotations)
    says their metrics are on the HTTP port.
    """
    kserve_port = str(METRICS_PORT["kserve"])
    return {
        "selector": {"matchExpressions": [{"key": ISVC_POD_LABEL, "operator": "Exists"}]},
        "podMetricsEndpoints": [
            {"port": TORCHSERVE_METRICS_PORT_NAME, "path": "/metrics", "interval": SCRAPE_INTERVAL,
             "relabelings": target_relabelings(team)},
            {"port": KSERVE_HTTP_PORT_NAME, "path": "/metrics", "interval": SCRAPE_INTERVAL,
             "relabelings": [{"action": "keep", "sourceLabels": ["__meta_kubernetes_pod_annotation_prometheus_io_port"],
                              "regex": kserve_port},
                             *target_relabelings(team)]},
        ],
    }


@dataclass(frozen=True)
class TeamMonitoringArgs:
    """Args of :class:`TeamMonitoring`.

    Attributes:
        team: Team name; also the namespace name.
        provider: Kubernetes provider whose default namespace is the team's.
        depends_on: What must exist first (the team's namespace).
    """

    team: str
    provider: k8s.Provider
    depends_on: tuple[pulumi.Resource, ...] = ()


class TeamMonitoring(pulumi.ComponentResource):
    """The team's PodMonitor; needs the platform's metrics stack (its CRDs) in the cluster."""

    def __init__(self, name: str, args: TeamMonitoringArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-platform:team:TeamMonitoring", name, None, opts)
        k8s.apiextensions.CustomResource(
            f"{name}-pod-monitor",
            api_version="monitoring.coreos.com/v1",
            kind="PodMonitor",
            metadata={"name": POD_MONITOR_NAME, "namespace": args.team},
            spec=pod_monitor_spec(args.team),
            # A component's depends_on does not reach its children; the PodMonitor waits for them itself.
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=list(args.depends_on)),
        )
        self.register_outputs({})
