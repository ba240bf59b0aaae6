"""GPU metrics: NVIDIA's DCGM exporter on every GPU node, scraped with each GPU's node and pool attached.

The exporter runs as a non-root user without capabilities. Upstream's default is root with SYS_ADMIN,
which only the profiling fields (`DCGM_FI_PROF_*`: SM occupancy, tensor-core activity) need; the
platform exports the device fields instead (utilisation, memory, temperature, power, XID and ECC
errors, throttling). Two things follow from running without root: no profiling fields, and no
`pod`/`namespace` labels of the pod holding a GPU, because the kubelet's pod-resources socket the
exporter would ask is root-only. Per-team GPU use comes from kube-state-metrics' resource requests.
https://github.com/NVIDIA/dcgm-exporter/blob/4.5.3-4.8.2/deployment/values.yaml
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.components.gpu_node_pool import ACCELERATOR_LABEL, DEDICATED_KEY, GPU_TAINT_KEY, POOL_LABEL
from infra.helm import release_args
from infra.observability.metric_sources import DCGM_COUNTERS
from infra.versions import DCGM_EXPORTER

RELEASE_NAME = "dcgm-exporter"
# A node agent with a hostPath mount (the chart always mounts the kubelet's pod-resources directory):
# beside the device plugin, not in the restricted `monitoring` namespace.
NAMESPACE = "kube-system"
METRICS_PORT_NAME = "metrics"
# The uid the exporter image creates for running without root.
EXPORTER_UID = 1000
SCRAPE_INTERVAL = "15s"

# The counters file (`-f`) is the documented list of GPU metrics: one place for what runs and what is read.
GPU_COUNTERS = DCGM_COUNTERS


def exported_metrics() -> frozenset[str]:
    """Names of the metrics the exporter serves (one per counter, named after its DCGM field)."""
    return frozenset(field for field, kind, _ in GPU_COUNTERS if kind != "label")


def counters_csv() -> str:
    """The counters file, in the exporter's format: `field, type, help` per line."""
    return "".join(f"{field}, {kind}, {help_text}\n" for field, kind, help_text in GPU_COUNTERS)


def gpu_tolerations() -> list[dict[str, str]]:
    """Every pool's taints: the GPU taint, and the team taint of dedicated pools, whatever its value."""
    return [{"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"},
            {"key": DEDICATED_KEY, "operator": "Exists", "effect": "NoSchedule"}]


def dcgm_exporter_values() -> dict[str, Any]:
    """Chart values: GPU nodes only, non-root, our own counters, and no chart ServiceMonitor (ours adds
    the node and pool labels).

    https://github.com/NVIDIA/dcgm-exporter/blob/4.5.3-4.8.2/deployment/values.yaml
    """
    return {
        "nodeSelector": {ACCELERATOR_LABEL: "nvidia"},
        "tolerations": gpu_tolerations(),
        "priorityClassName": "system-node-critical",
        "podSecurityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
        "securityContext": {
            "runAsNonRoot": True, "runAsUser": EXPORTER_UID, "runAsGroup": EXPORTER_UID,
            # Helm merges this map into upstream's, whose `capabilities.add: [SYS_ADMIN]` would otherwise survive.
            # An empty list rather than null: a null in a Pulumi input reads back as absent, hiding the override.
            "allowPrivilegeEscalation": False, "capabilities": {"add": [], "drop": ["ALL"]},
        },
        "customMetrics": counters_csv(),
        "serviceMonitor": {"enabled": False},
        "service": {"enable": True, "port": 9400},
        # Pod labels would need a ClusterRole reading every pod; the GPU's node and pool are enough.
        "kubernetes": {"enablePodLabels": False, "enablePodUID": False},
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "200m", "memory": "512Mi"}},
    }


def meta_label(node_label: str) -> str:
    """The service-discovery label Prometheus gives a node label (`attachMetadata.node`)."""
    return "__meta_kubernetes_node_label_" + re.sub(r"[^a-zA-Z0-9_]", "_", node_label)


def service_monitor_spec() -> dict[str, Any]:
    """Scrape the exporter's Service and label each target with its GPU's `node` and `gpu_pool`.

    Rules and dashboards rely on those two labels. Node labels are only reachable with
    `attachMetadata.node`, which Prometheus >= 2.37 supports for ServiceMonitors.
    """
    return {
        "selector": {"matchLabels": {"app.kubernetes.io/name": RELEASE_NAME,
                                     "app.kubernetes.io/instance": RELEASE_NAME}},
        "namespaceSelector": {"matchNames": [NAMESPACE]},
        "attachMetadata": {"node": True},
        "endpoints": [{
            "port": METRICS_PORT_NAME,
            "path": "/metrics",
            "interval": SCRAPE_INTERVAL,
            "relabelings": [
                {"action": "replace", "sourceLabels": ["__meta_kubernetes_pod_node_name"], "targetLabel": "node"},
                {"action": "replace", "sourceLabels": [meta_label(POOL_LABEL)], "targetLabel": "gpu_pool"},
            ],
        }],
    }


@dataclass(frozen=True)
class GpuMetricsArgs:
    """Args of :class:`GpuMetrics`.

    Attributes:
        provider: Kubernetes provider of the cluster.
        node_pools: The GPU pools it watches (installed once they exist).
        depends_on: What provides the ServiceMonitor CRD (the metrics stack).
    """

    provider: k8s.Provider
    node_pools: tuple[pulumi.Resource, ...] = ()
    depends_on: tuple[pulumi.Resource, ...] = ()


class GpuMetrics(pulumi.ComponentResource):
    """The DCGM exporter as a pinned Helm release on GPU nodes, and the ServiceMonitor that scrapes it."""

    def __init__(self, name: str, args: GpuMetricsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-platform:observability:GpuMetrics", name, None, opts)
        release = k8s.helm.v3.Release(
            f"{name}-release",
            name=RELEASE_NAME,
            namespace=NAMESPACE,
            values=dcgm_exporter_values(),
            atomic=True,
            # A component's depends_on does not reach its children; the release waits for the pools itself.
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider,
                                        depends_on=[*args.node_pools, *args.depends_on]),
            **release_args(DCGM_EXPORTER),
        )
        k8s.apiextensions.CustomResource(
            f"{name}-service-monitor",
            api_version="monitoring.coreos.com/v1",
            kind="ServiceMonitor",
            metadata={"name": RELEASE_NAME, "namespace": NAMESPACE},
            spec=service_monitor_spec(),
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider,
                                        depends_on=[release, *args.depends_on]),
        )
        self.status = release.status
        self.register_outputs({})
