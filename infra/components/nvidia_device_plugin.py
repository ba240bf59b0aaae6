"""The NVIDIA device plugin, which advertises each node's GPUs to the scheduler as nvidia.com/gpu."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml

from infra.components.gpu_node_pool import ACCELERATOR_LABEL, DEDICATED_KEY, GPU_TAINT_KEY
from infra.config import GpuPoolConfig
from infra.helm import release_args
from infra.versions import NVIDIA_DEVICE_PLUGIN

# The config of nodes that name none: every GPU whole, MIG devices (if a GPU is partitioned anyway) not advertised.
DEFAULT_CONFIG = "default"


def device_plugin_config(pool: GpuPoolConfig | None) -> dict[str, Any]:
    """The device plugin's config file for the nodes of one pool (None: the default for every other GPU node).

    Every kind of share is advertised as `nvidia.com/gpu`, so that quotas, the pool contract and the models' requests
    keep one resource name: a time-slice (`renameByDefault: false`) or a MIG instance (`migStrategy: single`, every
    GPU of the node in the same profile). A pod asking for more than one time-slice would get no more compute, only
    the illusion of it, so such a request fails (`failRequestsGreaterThanOne`).
    https://github.com/NVIDIA/k8s-device-plugin#shared-access-to-gpus-with-cuda-time-slicing
    https://github.com/NVIDIA/k8s-device-plugin#configuration-option-details (migStrategy)
    """
    mode = pool.sharing.mode if pool is not None else "none"
    config: dict[str, Any] = {"version": "v1", "flags": {"migStrategy": "single" if mode == "mig" else "none",
                                                         "failOnInitError": True}}
    if pool is not None and mode == "time-slicing":
        config["sharing"] = {"timeSlicing": {"renameByDefault": False, "failRequestsGreaterThanOne": True,
                                             "resources": [{"name": "nvidia.com/gpu",
                                                            "replicas": pool.slices_per_gpu}]}}
    return config


def device_plugin_configs(pools: tuple[GpuPoolConfig, ...]) -> dict[str, str]:
    """The chart's `config.map`: one named config file per pool (selected by the node label the pool's nodes carry,
    see gpu_labels) and the default."""
    configs = {DEFAULT_CONFIG: device_plugin_config(None)} | {pool.name: device_plugin_config(pool) for pool in pools}
    return {name: yaml.safe_dump(config, sort_keys=False) for name, config in configs.items()}


def device_plugin_values(pools: tuple[GpuPoolConfig, ...] = ()) -> dict[str, Any]:
    """Chart values: run on every GPU node of every pool (dedicated ones too), and nowhere else, each node with its
    pool's sharing config.

    https://github.com/NVIDIA/k8s-device-plugin/blob/main/deployments/helm/nvidia-device-plugin/values.yaml
    """
    return {
        "config": {"map": device_plugin_configs(pools), "default": DEFAULT_CONFIG},
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
        pools: The GPU pools' config (each gets its sharing config).
        node_pools: The GPU pools it serves (installed once they exist).
    """

    provider: k8s.Provider
    pools: tuple[GpuPoolConfig, ...] = ()
    node_pools: tuple[pulumi.Resource, ...] = ()


class NvidiaDevicePlugin(pulumi.ComponentResource):
    """The device plugin as a pinned Helm release in kube-system."""

    def __init__(self, name: str, args: NvidiaDevicePluginArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-platform:compute:NvidiaDevicePlugin", name, None, opts)
        release = k8s.helm.v3.Release(
            f"{name}-release",
            name="nvidia-device-plugin",
            namespace="kube-system",
            values=device_plugin_values(args.pools),
            atomic=True,
            # A component's depends_on does not reach its children; the release waits for the pools itself.
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=list(args.node_pools)),
            **release_args(NVIDIA_DEVICE_PLUGIN),
        )
        self.status = release.status
        self.register_outputs({})
