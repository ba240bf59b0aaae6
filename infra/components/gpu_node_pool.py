"""GPU node pools: EKS managed node groups on the NVIDIA AL2023 AMI, tainted so only GPU work lands there."""

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


def gpu_labels(pool: GpuPoolConfig) -> dict[str, str]:
    """Node labels that workloads select a pool by."""
    labels = {
        ACCELERATOR_LABEL: "nvidia",
        AUTOSCALER_GPU_LABEL: pool.gpu.gpu,
        GPU_TYPE_LABEL: pool.gpu.gpu,
        POOL_LABEL: pool.name,
        CAPACITY_LABEL: pool.capacity_type.lower().replace("_", "-"),
    }
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
        "gpuType": pool.gpu.gpu,
        "instanceTypes": list(pool.instance_types),
        "capacityType": pool.capacity_type,
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
