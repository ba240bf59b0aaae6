"""kubernetes-core-namespace-gpu-quota-capacity: a team's GPU quota is one the platform's pools can hold.

A quota counts ``requests.nvidia.com/gpu``: on a pool that shares its GPUs (time-slicing or MIG) each GPU advertises
``ai-platform.io/gpu-slices`` of them, so a pool holds nodes at its maximum x GPUs of its smallest instance type x
slices. The maximum is a node group's ``scalingConfig.maxSize``, or what a Karpenter NodePool's ``spec.limits`` let
it launch (``nodes``, or ``nvidia.com/gpu`` over the GPUs of its smallest type, whichever is fewer).
"""

from __future__ import annotations

from typing import Any

from pulumi_policy import ReportViolation, Severity, StackValidationArgs, StackValidationPolicy

from policies.aws.eks.nodegroups import NODE_GROUP, is_gpu_node_group
from policies.frameworks import ISO27001, SOC2, platform_baseline
from policies.gpu_catalog import gpus_per_instance
from policies.kubernetes.core.team_namespace_resource_quota import GPU_REQUESTS, RESOURCE_QUOTA
from policies.kubernetes.core.team_namespaces import in_namespace, team_namespaces
from policies.kubernetes.karpenter.nodepools import (
    GPU,
    NODE_POOL,
    gpus_per_node,
    is_gpu_node_pool,
    limit,
    template_labels,
)
from policies.props import count, describe, get, items, quantity

# The labels a pool reserved for one team, and one sharing its GPUs, carry (infra/components/gpu_node_pool.py).
DEDICATED_LABEL = "ai-platform.io/dedicated"
SLICES_LABEL = "ai-platform.io/gpu-slices"


def pool_gpus(props) -> int:
    """GPUs a pool holds at maxSize for certain: any node may come up as its instance type with the fewest."""
    per_node = min((gpus_per_instance(str(t)) for t in items(get(props, "instanceTypes"))), default=0)
    # An unreadable maxSize holds nothing for certain (the budget policy reports it).
    return (count(get(props, "scalingConfig", "maxSize")) or 0) * per_node


def node_pool_gpus(props) -> int:
    """GPUs a Karpenter NodePool holds at its limits for certain: nodes at most, each of its smallest type."""
    per_node = (gpus_per_node(props) or (0, 0))[0]
    if not per_node:
        return 0
    node_limit, gpu_limit = limit(props, "nodes"), limit(props, GPU)
    nodes = [n for n in (node_limit, gpu_limit // per_node if gpu_limit is not None else None) if n is not None]
    # A NodePool without limits is refused by the budget policy; it holds nothing for certain.
    return int(min(nodes, default=0)) * per_node


def labels_of(pool) -> Any:
    """The labels a pool's nodes get: a node group's own, a NodePool's template's."""
    return template_labels(pool.props) if pool.resource_type == NODE_POOL else get(pool.props, "labels", default={})


def slices_per_gpu(labels) -> int:
    """How many nvidia.com/gpu one GPU of the pool advertises (1 unless it is time-sliced or cut by MIG)."""
    slices = count(get(labels, SLICES_LABEL))
    return slices if slices else 1


def pool_capacity(pool) -> int:
    """nvidia.com/gpu a pool surely holds at its maximum, counting each slice of a shared GPU."""
    physical = node_pool_gpus(pool.props) if pool.resource_type == NODE_POOL else pool_gpus(pool.props)
    return physical * slices_per_gpu(labels_of(pool))


def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    pools = [r for r in args.resources if (r.resource_type == NODE_GROUP and is_gpu_node_group(r.props))
             or (r.resource_type == NODE_POOL and is_gpu_node_pool(r.props))]
    for namespace, resource in team_namespaces(args.resources):
        usable = [p for p in pools if get(labels_of(p), DEDICATED_LABEL) in (None, namespace)]
        capacity = sum(pool_capacity(p) for p in usable)
        for quota in in_namespace(args.resources, RESOURCE_QUOTA, namespace):
            asked = get(quota.props, "spec", "hard", GPU_REQUESTS)
            gpus = quantity(asked)
            if asked is not None and gpus is None:
                report_violation(f"Team namespace '{namespace}' has a ResourceQuota '{quota.name}' whose "
                                 f"{GPU_REQUESTS} is '{describe(asked)}', not a quantity; its GPUs cannot be checked "
                                 "against the pools.", resource.urn)
            elif gpus is not None and gpus > capacity:
                shown = int(gpus) if gpus.is_integer() else f"{gpus:g}"
                report_violation(f"Team namespace '{namespace}' may request {shown} GPUs, more than "
                                 f"the GPU pools it may use surely hold at maxSize ({capacity}).", resource.urn)


kubernetes_core_namespace_gpu_quota_capacity = StackValidationPolicy(
    name="kubernetes-core-namespace-gpu-quota-capacity",
    description="A team namespace's GPU quota (requests.nvidia.com/gpu) is no larger than the GPUs the pools the "
                "team may use (shared and its dedicated ones, node groups and Karpenter NodePools) surely hold at "
                "maxSize (smallest instance type), each slice of a time-sliced or MIG GPU counted as one.",
    validate=validate,
    severity=Severity.LOW,
    framework=platform_baseline("gpu-quota-capacity"),
    tags=["kubernetes", "multi-tenancy", "gpu", "cost", SOC2, ISO27001],
    remediation_steps="Lower teams[].quota.gpu in the platform's stacks/Pulumi.<env>.yaml, or grow the pools the "
                      "team may use (gpuPools[].maxSize, or a pool dedicated to the team).",
    url="https://kubernetes.io/docs/concepts/policy/resource-quotas/#resource-quota-for-extended-resources",
)
