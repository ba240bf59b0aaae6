"""GPU node pools: what every pool's nodes carry (labels, taints, the contract teams schedule by), and the pools
that are EKS managed node groups on the NVIDIA AL2023 AMI (Karpenter pools: infra/components/karpenter_node_pool.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.components.node_launch_template import node_launch_template
from infra.config import GpuPoolConfig

# https://docs.aws.amazon.com/eks/latest/APIReference/API_Nodegroup.html#AmazonEKS-Type-Nodegroup-amiType
GPU_AMI_TYPE = "AL2023_x86_64_NVIDIA"
GPU_TAINT_KEY = "nvidia.com/gpu"
DEDICATED_KEY = "ai-platform.io/dedicated"
ACCELERATOR_LABEL = "ai-platform.io/accelerator"
GPU_TYPE_LABEL = "ai-platform.io/gpu-type"
POOL_LABEL = "ai-platform.io/gpu-pool"
CAPACITY_LABEL = "ai-platform.io/capacity-type"
SHARING_LABEL = "ai-platform.io/gpu-sharing"
SLICES_LABEL = "ai-platform.io/gpu-slices"
# The device plugin reads its per-node config by this label's value, one named config per pool.
# https://github.com/NVIDIA/k8s-device-plugin#multiple-config-files
DEVICE_PLUGIN_CONFIG_LABEL = "nvidia.com/device-plugin.config"
# NVIDIA's MIG manager label naming the partitioning a node wants (`all-<profile>`: every GPU alike).
# https://github.com/NVIDIA/mig-parted/tree/main/deployments/gpu-operator
MIG_CONFIG_LABEL = "nvidia.com/mig.config"
# The cluster autoscaler treats a node with this label as a GPU node that is not ready until the device plugin
# advertises its GPUs; without it, it sees a ready node without GPUs and launches another (costly on p5).
# https://github.com/kubernetes/autoscaler/blob/master/cluster-autoscaler/cloudprovider/aws/README.md#gpu-node-groups
AUTOSCALER_GPU_LABEL = "k8s.amazonaws.com/accelerator"
_K8S_EFFECT = {"NO_SCHEDULE": "NoSchedule", "NO_EXECUTE": "NoExecute", "PREFER_NO_SCHEDULE": "PreferNoSchedule"}


def gpu_taints(pool: GpuPoolConfig) -> list[dict[str, str]]:
    """EKS taints of a pool: every GPU node repels non-GPU pods; a dedicated pool repels other teams."""
    taints = [{"key": GPU_TAINT_KEY, "value": "true", "effect": "NO_SCHEDULE"}]
    if pool.dedicated_team:
        taints.append({"key": DEDICATED_KEY, "value": pool.dedicated_team, "effect": "NO_SCHEDULE"})
    return taints


def mig_config(pool: GpuPoolConfig) -> str | None:
    """The MIG partitioning of a pool's GPUs (every GPU into the pool's profile), or None without MIG."""
    return f"all-{pool.sharing.mig_profile}" if pool.sharing.mode == "mig" else None


def gpu_labels(pool: GpuPoolConfig) -> dict[str, str]:
    """Node labels that workloads select a pool by, and that tell the device plugin how the pool shares its GPUs.

    A Karpenter pool gets no capacity-type label of ours: its nodes carry Karpenter's `karpenter.sh/capacity-type`,
    which says what each node really is when the pool mixes spot and on-demand.
    """
    labels = {
        ACCELERATOR_LABEL: "nvidia",
        AUTOSCALER_GPU_LABEL: pool.gpu.gpu,
        GPU_TYPE_LABEL: pool.gpu.gpu,
        POOL_LABEL: pool.name,
        SHARING_LABEL: pool.sharing.mode,
        SLICES_LABEL: str(pool.slices_per_gpu),
        DEVICE_PLUGIN_CONFIG_LABEL: pool.name,
    }
    if not pool.is_karpenter:
        labels[CAPACITY_LABEL] = pool.capacity_type.lower().replace("_", "-")
    migs = mig_config(pool)
    if migs:
        labels[MIG_CONFIG_LABEL] = migs
    if pool.dedicated_team:
        labels[DEDICATED_KEY] = pool.dedicated_team
    return labels


def tolerations_for(taints: list[dict[str, str]]) -> list[dict[str, str]]:
    """Kubernetes tolerations that match EKS taints exactly."""
    return [{"key": t["key"], "operator": "Equal", "value": t["value"], "effect": _K8S_EFFECT[t["effect"]]}
            for t in taints]


def pool_contract(pool: GpuPoolConfig) -> dict[str, Any]:
    """What a team stack needs to schedule onto a pool (exported by the platform stack)."""
    taints = gpu_taints(pool)
    return {
        "name": pool.name,
        "provisioner": pool.provisioner,
        "gpuType": pool.gpu.gpu,
        "instanceTypes": list(pool.instance_types),
        "capacityType": pool.capacity_type,
        "capacityTypes": list(pool.capacity_types),
        # A model's nvidia.com/gpu on this pool is a slice: a whole GPU, a time-slice or a MIG instance.
        "sharing": {"mode": pool.sharing.mode, "slicesPerGpu": pool.slices_per_gpu,
                    "migProfile": pool.sharing.mig_profile or ""},
        "maxSize": pool.max_size,
        "gpusPerNode": pool.gpus_per_node,
        "maxGpus": pool.max_gpus,
        "dedicatedTeam": pool.dedicated_team or "",
        "taints": taints,
        "tolerations": tolerations_for(taints),
        "nodeSelector": {POOL_LABEL: pool.name},
    }


@dataclass(frozen=True)
class GpuNodePoolArgs:
    """Args of :class:`GpuNodePool`.

    Attributes:
        pool: The pool's stack config.
        cluster_name: EKS cluster to join.
        node_role_arn: IAM role of the nodes.
        subnet_ids: Private subnets to launch nodes in.
        volume_key_arn: KMS key of the root volumes.
    """

    pool: GpuPoolConfig
    cluster_name: pulumi.Input[str]
    node_role_arn: pulumi.Input[str]
    subnet_ids: pulumi.Input[list[str]]
    volume_key_arn: pulumi.Input[str]


class GpuNodePool(pulumi.ComponentResource):
    """One GPU pool; scales to zero when ``minSize`` is 0.

    https://docs.aws.amazon.com/eks/latest/userguide/ml-eks-optimized-ami.html
    """

    node_group_name: pulumi.Output[str]

    def __init__(self, name: str, args: GpuNodePoolArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-platform:compute:GpuNodePool", name, None, opts)
        pool = args.pool
        template = node_launch_template(f"{name}-nodes", volume_gib=pool.root_volume_gib,
                                        kms_key_arn=args.volume_key_arn, parent=self)
        group = aws.eks.NodeGroup(
            f"{name}-nodes",
            cluster_name=args.cluster_name,
            node_role_arn=args.node_role_arn,
            subnet_ids=args.subnet_ids,
            ami_type=GPU_AMI_TYPE,
            capacity_type=pool.capacity_type,
            instance_types=list(pool.instance_types),
            scaling_config={"min_size": pool.min_size, "max_size": pool.max_size, "desired_size": pool.desired},
            taints=gpu_taints(pool),
            labels=gpu_labels(pool),
            launch_template={"id": template.id, "version": template.latest_version.apply(str)},
            update_config={"max_unavailable": 1},
            # The cluster autoscaler owns the current size once the group exists.
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["scalingConfig.desiredSize"]),
        )
        self.node_group_name = group.node_group_name
        self.register_outputs({"node_group_name": self.node_group_name})
