"""The NVIDIA device plugin, which advertises each node's GPUs to the scheduler as nvidia.com/gpu."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.components.gpu_node_pool import ACCELERATOR_LABEL, DEDICATED_KEY, GPU_TAINT_KEY
from infra.versions import NVIDIA_DEVICE_PLUGIN


def device_plugin_values() -> dict[str, Any]:
    """Chart values: run on every GPU node of every pool (dedicated ones too), and nowhere else.

    https://github.com/NVIDIA/k8s-device-plugin/blob/main/deployments/helm/nvidia-device-plugin/values.yaml
    """
    return {
        "tolerations": [
            {"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"},
            {"key": DEDICATED_KEY, "operator": "Exists", "effect": "NoSchedule"},
            {"key": "CriticalAddonsOnly", "operator": "Exists"},
        ],
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": ACCELERATOR_LABEL, "operator": "In", "values": ["nvidia"]}]},
        ]}}},
        "priorityClassName": "system-node-critical",
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
        "gfd": {"enabled": False},
    }


@dataclass(frozen=True)
class NvidiaDevicePluginArgs:
    """Args of :class:`NvidiaDevicePlugin`.

    Attributes:
        provider: Kubernetes provider of the cluster.
    """

    provider: k8s.Provider


class NvidiaDevicePlugin(pulumi.ComponentResource):
    """The device plugin as a pinned Helm release in kube-system."""

    def __init__(self, name: str, args: NvidiaDevicePluginArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-platform:compute:NvidiaDevicePlugin", name, None, opts)
        chart = NVIDIA_DEVICE_PLUGIN
        release = k8s.helm.v3.Release(
            f"{name}-release",
            name="nvidia-device-plugin",
            chart=chart.chart,
            version=chart.version,
            repository_opts={"repo": chart.repository},
            namespace="kube-system",
            values=device_plugin_values(),
            atomic=True,
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider),
        )
        self.status = release.status
        self.register_outputs({})
