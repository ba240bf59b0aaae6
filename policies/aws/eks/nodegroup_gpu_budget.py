"""aws-eks-nodegroup-gpu-budget: the GPU pools of a stack can not scale past the GPU budget, in GPUs.

Managed node groups count ``scalingConfig.maxSize`` nodes of their largest instance type. Karpenter NodePools count
what their ``spec.limits`` allow (https://karpenter.sh/docs/concepts/nodepools/#speclimits): ``nvidia.com/gpu``
physical GPUs, or ``nodes`` times the GPUs of their largest instance type, whichever is smaller. A GPU NodePool with
neither limit can launch GPU nodes until the account's EC2 quota stops it, so it cannot be counted and is refused.
"""

from __future__ import annotations

from pulumi_policy import PolicyConfigSchema, ReportViolation, Severity, StackValidationArgs, StackValidationPolicy

from policies.aws.eks.nodegroups import NODE_GROUP, is_gpu_node_group
from policies.frameworks import CIS_EKS, SOC2, platform_baseline
from policies.gpu_catalog import gpus_per_instance
from policies.kubernetes.karpenter.nodepools import (
    GPU,
    NODE_POOL,
    gpus_per_node,
    instance_types,
    is_gpu_node_pool,
    limit,
    limit_problems,
)
from policies.props import config_value, count, describe, get, items, number

DEFAULT_MAX_GPUS = 32


def node_pool_gpus(name: str, props) -> tuple[int | None, str | None]:
    """(GPUs a GPU NodePool may hold, None) or (None, why they cannot be counted)."""
    problems = limit_problems(props, (GPU, "nodes"))
    if problems:
        return None, f"GPU NodePool '{name}' {problems[0]}; its GPUs cannot be counted against the budget."
    bounds = []
    gpu_limit, node_limit = limit(props, GPU), limit(props, "nodes")
    if gpu_limit is not None:
        bounds.append(gpu_limit)
    per_node = gpus_per_node(props)
    if node_limit is not None and per_node is not None:
        bounds.append(node_limit * per_node[1])
    if bounds:
        return int(min(bounds)), None
    if node_limit is not None:
        return None, (f"GPU NodePool '{name}' limits nodes, but its instance types' GPUs are not known "
                      f"({', '.join(instance_types(props)) or 'no node.kubernetes.io/instance-type In requirement'}); "
                      f"set spec.limits[\"{GPU}\"] so its GPUs can be counted against the budget.")
    return None, (f"GPU NodePool '{name}' sets neither spec.limits[\"{GPU}\"] nor spec.limits.nodes: Karpenter "
                  "could launch GPU nodes without bound.")


def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    budget = int(number(config_value(args, "maxGpus", DEFAULT_MAX_GPUS), DEFAULT_MAX_GPUS))
    gpus: dict[str, int] = {}
    for group in (r for r in args.resources if r.resource_type == NODE_GROUP and is_gpu_node_group(r.props)):
        types = [str(t) for t in items(get(group.props, "instanceTypes"))]
        unknown = [t for t in types if not gpus_per_instance(t)]
        if unknown or not types:
            report_violation(f"GPU node group '{group.name}' uses instance types whose GPUs are not known "
                             f"({', '.join(unknown) or 'none listed'}); its GPUs cannot be counted against the "
                             "budget.", group.urn)
            continue
        max_size = get(group.props, "scalingConfig", "maxSize")
        nodes = count(max_size)
        if nodes is None:
            shown = ("no scalingConfig.maxSize" if max_size is None
                     else f"scalingConfig.maxSize '{describe(max_size)}', not a whole number of nodes")
            report_violation(f"GPU node group '{group.name}' has {shown}; its GPUs cannot be counted against the "
                             "budget.", group.urn)
            continue
        # A node may come up as any of the group's types: count the one with the most GPUs.
        per_node = max(gpus_per_instance(t) for t in types)
        gpus[group.name] = nodes * per_node
    for pool in (r for r in args.resources if r.resource_type == NODE_POOL and is_gpu_node_pool(r.props)):
        held, problem = node_pool_gpus(pool.name, pool.props)
        if problem is not None:
            report_violation(problem, pool.urn)
        elif held is not None:
            gpus[pool.name] = held
    total = sum(gpus.values())
    if total > budget:
        detail = ", ".join(f"{name}={count}" for name, count in sorted(gpus.items()))
        report_violation(f"GPU pools can scale to {total} GPUs ({detail}); the budget is {budget} GPUs.")


aws_eks_nodegroup_gpu_budget = StackValidationPolicy(
    name="aws-eks-nodegroup-gpu-budget",
    description="The GPUs a stack's GPU pools may hold stay within maxGpus: node groups at scalingConfig.maxSize "
                "(nodes times the GPUs of their largest instance type), Karpenter NodePools at spec.limits "
                "(nvidia.com/gpu, or nodes times the GPUs of their largest instance type); a GPU NodePool without "
                "either limit is refused.",
    validate=validate,
    config_schema=PolicyConfigSchema(properties={
        "maxGpus": {"type": "integer", "minimum": 0, "default": DEFAULT_MAX_GPUS},
    }),
    severity=Severity.MEDIUM,
    framework=platform_baseline("gpu-budget"),
    tags=["aws", "eks", "karpenter", "gpu", "cost", CIS_EKS, SOC2],
    remediation_steps="Lower maxSize (or pick smaller instance types) of the GPU pools in "
                      "stacks/Pulumi.<stack>.yaml, or raise maxGpus in policies/config/<env>.json with the FinOps "
                      "owner's approval. A Karpenter NodePool needs spec.limits nvidia.com/gpu (or nodes, with its "
                      "instance types listed).",
    url="https://docs.aws.amazon.com/eks/latest/userguide/managed-node-groups.html",
)
