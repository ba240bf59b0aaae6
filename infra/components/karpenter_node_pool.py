"""Karpenter GPU pools: one EC2NodeClass (how a node is built) and one NodePool (which nodes, how many, how long)
per `provisioner: karpenter` pool, and the placeholder pods that keep the pool's capacity floor warm.

https://karpenter.sh/docs/concepts/nodeclasses/
https://karpenter.sh/docs/concepts/nodepools/
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.components.gpu_node_pool import CAPACITY_LABEL, POOL_LABEL, gpu_labels, gpu_taints, tolerations_for
from infra.components.network import KARPENTER_DISCOVERY_TAG
from infra.components.node_launch_template import metadata_options
from infra.components.pod_security import restricted_pod_security_context, restricted_security_context
from infra.config import GpuPoolConfig
from infra.gpu_catalog import mig_profiles
from infra.versions import KARPENTER_NODE_AMI, PAUSE

NODE_CLASS_GROUP = "karpenter.k8s.aws"
NODE_CLASS_API = f"{NODE_CLASS_GROUP}/v1"
NODE_POOL_API = "karpenter.sh/v1"
GPU_RESOURCE = "nvidia.com/gpu"
ROOT_DEVICE = "/dev/xvda"
# At most this share of a pool's nodes is disrupted at once by consolidation, drift (a new AMI) or expiry; Karpenter
# rounds up, so a small pool still replaces one node at a time and never stalls. Spot interruptions ignore budgets.
# https://karpenter.sh/docs/concepts/disruption/#nodepool-disruption-budgets
DISRUPTION_BUDGET = "10%"
PLACEHOLDER_LABEL = "ai-platform.io/capacity-floor"
# The pause image's own user and group.
PAUSE_UID = 65535


def node_class_name(pool: GpuPoolConfig) -> str:
    """The pool's EC2NodeClass and NodePool share its name (both are cluster-scoped, one pair per pool)."""
    return pool.name


def subnet_selector_terms(cluster_name: str, subnet_ids: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """The subnets the stack tagged for Karpenter, or those of a VPC the stack does not own, by id."""
    if subnet_ids:
        return [{"id": subnet_id} for subnet_id in subnet_ids]
    return [{"tags": {KARPENTER_DISCOVERY_TAG: cluster_name}}]


def mig_user_data(pool: GpuPoolConfig) -> str:
    """A boot script that partitions every GPU of a node into the pool's MIG profile, or "" without MIG.

    On AL2023 Karpenter places this shell part before its own NodeConfig; cloud-init runs it before nodeadm starts
    the kubelet, so the device plugin only ever sees the partitions. What a real node must confirm: the NVIDIA driver
    is loaded when the script runs (``nvidia-smi -L`` lists the GPUs), ``nvidia-smi -mig 1`` takes effect without a
    reboot on the pool's GPU (a GPU in use reports the change as pending), and the node advertises
    ``slices_per_gpu`` x GPUs of ``nvidia.com/gpu``. GPU instances do not survive a reboot: a rebooted node must be
    replaced (Karpenter replaces a node that fails its health checks; deleting the NodeClaim does it by hand).
    https://docs.nvidia.com/datacenter/tesla/mig-user-guide/#creating-gpu-instances
    """
    if pool.sharing.mode != "mig":
        return ""
    profile = str(pool.sharing.mig_profile)
    instances = mig_profiles(pool.instance_types[0])[profile]
    return "\n".join([
        "#!/bin/bash",
        f"# Partition every GPU into {instances} MIG instances of {profile} before the kubelet starts.",
        "set -euo pipefail",
        "nvidia-smi -mig 1",
        f"nvidia-smi mig -cgi {','.join([profile] * instances)} -C",
        "",
    ])


def ec2_node_class_spec(pool: GpuPoolConfig, *, cluster_name: str, node_role_name: pulumi.Input[str],
                        volume_key_arn: pulumi.Input[str], tags: Mapping[str, str],
                        subnet_ids: tuple[str, ...] = ()) -> dict[str, Any]:
    """How the pool's nodes are built: the pinned AL2023 release (its NVIDIA variant on GPU types), IMDSv2 with a hop
    limit of 1, a gp3 root volume encrypted with the platform's key, the stack's tags, and MIG partitioning at boot.

    Karpenter does not apply the provider's default tags: the instances, volumes and network interfaces it creates
    carry ``tags`` (and Karpenter's own cluster, NodePool and NodeClaim tags).
    """
    imds = metadata_options()
    spec: dict[str, Any] = {
        "role": node_role_name,
        "amiSelectorTerms": [{"alias": KARPENTER_NODE_AMI.alias}],
        "subnetSelectorTerms": subnet_selector_terms(cluster_name, subnet_ids),
        "securityGroupSelectorTerms": [{"tags": {KARPENTER_DISCOVERY_TAG: cluster_name}}],
        "metadataOptions": {"httpEndpoint": imds["http_endpoint"], "httpProtocolIPv6": "disabled",
                            "httpPutResponseHopLimit": imds["http_put_response_hop_limit"],
                            "httpTokens": imds["http_tokens"]},
        "blockDeviceMappings": [{"deviceName": ROOT_DEVICE, "rootVolume": True, "ebs": {
            "volumeSize": f"{pool.root_volume_gib}Gi", "volumeType": "gp3", "encrypted": True,
            "kmsKeyID": volume_key_arn, "deleteOnTermination": True}}],
        "tags": dict(tags),
    }
    if "RESERVED" in pool.capacity_types:
        spec["capacityReservationSelectorTerms"] = [{"id": cr} for cr in pool.capacity_reservation_ids]
    user_data = mig_user_data(pool)
    if user_data:
        spec["userData"] = user_data
    return spec


def node_taints(pool: GpuPoolConfig) -> list[dict[str, str]]:
    """The pool's taints in Kubernetes form (NoSchedule), as a NodePool declares them."""
    return [{key: toleration[key] for key in ("key", "value", "effect")}
            for toleration in tolerations_for(gpu_taints(pool))]


def node_pool_spec(pool: GpuPoolConfig, *, node_class: str) -> dict[str, Any]:
    """Which nodes the pool may launch, how many, and when Karpenter may take them away.

    - Labels and taints are the managed pools' (teams select and tolerate pools alike); the capacity type of each
      node is Karpenter's own ``karpenter.sh/capacity-type`` label.
    - ``limits`` bound the pool at ``maxSize`` nodes and the GPUs of that many of its largest type: the GPU budget
      policy reads them.
    - ``expireAfter`` replaces nodes by age (a node comes back on the pinned AMI with current patches);
      ``terminationGracePeriod`` caps how long a drain waits for pods whose disruption budgets block it.
    """
    requirements = [
        {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": list(pool.instance_types)},
        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": list(pool.karpenter_capacity_types)},
        {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
        {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
    ]
    labels = {key: value for key, value in gpu_labels(pool).items() if key != CAPACITY_LABEL}
    return {
        "template": {
            "metadata": {"labels": labels},
            "spec": {
                "nodeClassRef": {"group": NODE_CLASS_GROUP, "kind": "EC2NodeClass", "name": node_class},
                "requirements": requirements,
                "taints": node_taints(pool),
                "expireAfter": pool.expire_after,
                "terminationGracePeriod": pool.termination_grace_period,
            },
        },
        "limits": {GPU_RESOURCE: str(pool.max_gpus), "nodes": str(pool.max_size)},
        "disruption": {"consolidationPolicy": pool.consolidation.policy,
                       "consolidateAfter": pool.consolidation.after,
                       "budgets": [{"nodes": DISRUPTION_BUDGET}]},
    }


def placeholder_gpus(pool: GpuPoolConfig) -> int:
    """GPUs one placeholder requests: the physical GPUs of the pool's smallest node.

    Not the node's shared slices: Karpenter sizes a new node by its instance type's physical GPUs (it does not know
    the device plugin's sharing), so a request for more would never get a node launched. On a shared pool the
    placeholder holds that many slices and real pods use the rest before they need to preempt it.
    """
    return pool.min_gpus_per_node


def placeholder_deployment_spec(pool: GpuPoolConfig, *, priority_class: str) -> dict[str, Any]:
    """``minSize`` placeholder pods, one per node of the pool, that keep that many GPU nodes running.

    Each requests GPUs on the pool (its node selector and tolerations) at a priority below every real pod: a real
    pod that needs the GPU preempts it, the evicted placeholder turns Pending, and Karpenter launches a node for it.
    Required anti-affinity keeps two placeholders off one node, so the floor counts nodes, not GPUs.
    https://karpenter.sh/docs/faq/#how-do-i-keep-capacity-warm
    """
    labels = {PLACEHOLDER_LABEL: pool.name}
    gpus = placeholder_gpus(pool)
    return {
        "replicas": pool.min_size,
        "selector": {"matchLabels": labels},
        "template": {
            "metadata": {"labels": labels},
            "spec": {
                "priorityClassName": priority_class,
                "nodeSelector": {POOL_LABEL: pool.name},
                "tolerations": tolerations_for(gpu_taints(pool)),
                "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                    {"labelSelector": {"matchLabels": labels}, "topologyKey": "kubernetes.io/hostname"}]}},
                # Preempted placeholders leave at once: they hold nothing worth a graceful shutdown.
                "terminationGracePeriodSeconds": 0,
                "automountServiceAccountToken": False,
                "securityContext": restricted_pod_security_context(PAUSE_UID, group=PAUSE_UID),
                "containers": [{
                    "name": "pause",
                    "image": PAUSE.reference,
                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi", GPU_RESOURCE: gpus},
                                  "limits": {"memory": "16Mi", GPU_RESOURCE: gpus}},
                    "securityContext": {**restricted_security_context(), "readOnlyRootFilesystem": True},
                }],
            },
        },
    }


@dataclass(frozen=True)
class KarpenterGpuPoolArgs:
    """Args of :class:`KarpenterGpuPool`.

    Attributes:
        pool: The pool's stack config (``provisioner: karpenter``).
        cluster_name: EKS cluster the nodes join (selects the tagged subnets and security group).
        node_role_name: IAM role of Karpenter's nodes (it has an EC2_LINUX access entry).
        volume_key_arn: KMS key of the root volumes.
        tags: The stack's required tags, put on every instance, volume and network interface Karpenter creates.
        subnet_ids: Subnets of a VPC the stack does not own; empty selects the stack's subnets by tag.
        capacity_namespace: Namespace of the capacity floor's placeholder pods.
        placeholder_priority_class: Their PriorityClass (negative, non-preempting).
        provider: Kubernetes provider of the cluster.
        depends_on: What the pool must wait for: the Karpenter release (it installs the CRDs), the nodes' access
            entry and the security group's discovery tag.
    """

    pool: GpuPoolConfig
    cluster_name: str
    node_role_name: pulumi.Input[str]
    volume_key_arn: pulumi.Input[str]
    tags: Mapping[str, str]
    capacity_namespace: str
    placeholder_priority_class: str
    provider: k8s.Provider
    subnet_ids: tuple[str, ...] = ()
    depends_on: tuple[pulumi.Resource, ...] = ()


class KarpenterGpuPool(pulumi.ComponentResource):
    """One Karpenter GPU pool: its EC2NodeClass, its NodePool and, with ``minSize`` > 0, its capacity floor."""

    node_pool_name: pulumi.Output[str]

    def __init__(self, name: str, args: KarpenterGpuPoolArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-platform:compute:KarpenterGpuPool", name, None, opts)
        pool = args.pool
        # A component's depends_on does not reach its children: each object waits for the controller itself.
        after = pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=list(args.depends_on))
        node_class = k8s.apiextensions.CustomResource(
            f"{name}-node-class", api_version=NODE_CLASS_API, kind="EC2NodeClass",
            metadata={"name": node_class_name(pool)},
            spec=ec2_node_class_spec(pool, cluster_name=args.cluster_name, node_role_name=args.node_role_name,
                                     volume_key_arn=args.volume_key_arn, tags=args.tags, subnet_ids=args.subnet_ids),
            opts=after)
        node_pool = k8s.apiextensions.CustomResource(
            f"{name}-node-pool", api_version=NODE_POOL_API, kind="NodePool", metadata={"name": node_class_name(pool)},
            spec=node_pool_spec(pool, node_class=node_class_name(pool)),
            opts=pulumi.ResourceOptions.merge(after, pulumi.ResourceOptions(depends_on=[node_class])))
        if pool.min_size > 0:
            k8s.apps.v1.Deployment(
                f"{name}-capacity-floor",
                metadata={"name": f"{pool.name}-capacity-floor", "namespace": args.capacity_namespace},
                spec=placeholder_deployment_spec(pool, priority_class=args.placeholder_priority_class),
                opts=pulumi.ResourceOptions.merge(after, pulumi.ResourceOptions(depends_on=[node_pool])))
        self.node_pool_name = pulumi.Output.from_input(node_class_name(pool))
        self.register_outputs({"node_pool_name": self.node_pool_name})
