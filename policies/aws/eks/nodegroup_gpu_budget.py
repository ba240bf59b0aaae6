"""aws-eks-nodegroup-gpu-budget: the GPU node groups of a stack can not scale past the GPU budget, in GPUs."""

from __future__ import annotations

from pulumi_policy import PolicyConfigSchema, ReportViolation, Severity, StackValidationArgs, StackValidationPolicy

from policies.aws.eks.nodegroups import NODE_GROUP, is_gpu_node_group
from policies.frameworks import CIS_EKS, SOC2, platform_baseline
from policies.gpu_catalog import gpus_per_instance
from policies.props import config_value, get, items, number

DEFAULT_MAX_GPUS = 32


def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    budget = int(number(config_value(args, "maxGpus", DEFAULT_MAX_GPUS)))
    gpus: dict[str, int] = {}
    for group in (r for r in args.resources if r.resource_type == NODE_GROUP and is_gpu_node_group(r.props)):
        types = [str(t) for t in items(get(group.props, "instanceTypes"))]
        unknown = [t for t in types if not gpus_per_instance(t)]
        if unknown or not types:
            report_violation(f"GPU node group '{group.name}' uses instance types whose GPUs are not known "
                             f"({', '.join(unknown) or 'none listed'}); its GPUs cannot be counted against the "
                             "budget.", group.urn)
            continue
        # A node may come up as any of the group's types: count the one with the most GPUs.
        per_node = max(gpus_per_instance(t) for t in types)
        gpus[group.name] = int(number(get(group.props, "scalingConfig", "maxSize"))) * per_node
    total = sum(gpus.values())
    if total > budget:
        detail = ", ".join(f"{name}={count}" for name, count in sorted(gpus.items()))
        report_violation(f"GPU node groups can scale to {total} GPUs ({detail}); the budget is {budget} GPUs.")


aws_eks_nodegroup_gpu_budget = StackValidationPolicy(
    name="aws-eks-nodegroup-gpu-budget",
    description="The GPUs a stack's GPU node groups hold at scalingConfig.maxSize (nodes times the GPUs of their "
                "largest instance type) stay within maxGpus.",
    validate=validate,
    config_schema=PolicyConfigSchema(properties={
        "maxGpus": {"type": "integer", "minimum": 0, "default": DEFAULT_MAX_GPUS},
    }),
    severity=Severity.MEDIUM,
    framework=platform_baseline("gpu-budget"),
    tags=["aws", "eks", "gpu", "cost", CIS_EKS, SOC2],
    remediation_steps="Lower maxSize (or pick smaller instance types) of the GPU pools in "
                      "stacks/Pulumi.<stack>.yaml, or raise maxGpus in policies/config/<env>.json with the FinOps "
                      "owner's approval.",
    url="https://docs.aws.amazon.com/eks/latest/userguide/managed-node-groups.html",
)
