"""The NVIDIA device plugin, which advertises each node's GPUs to the scheduler as nvidia.com/gpu."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.components.gpu_node_pool import ACCELERATOR_LABEL, DEDICATED_KEY, GPU_TAINT_KEY
from infra.helm import release_args
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
        node_pools: The GPU pools it serves (installed once they exist).
    """

    provider: k8s.Provider
    node_pools: tuple[pulumi.Resource, ...] = ()


class NvidiaDevicePlugin(pulumi.ComponentResource):
    """The device plugin as a pinned Helm release in kube-system."""

    def __init__(self, name: str, args: NvidiaDevicePluginArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-platform:compute:NvidiaDevicePlugin", name, None, opts)
        release = k8s.helm.v3.Release(
            f"{name}-release",
            name="nvidia-device-plugin",
            namespace="kube-system",
            values=device_plugin_values(),
            atomic=True,
            # A component's depends_on does not reach its children; the release waits for the pools itself.
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=list(args.node_pools)),
            **release_args(NVIDIA_DEVICE_PLUGIN),
        )
        self.status = release.status
        self.register_outputs({})
