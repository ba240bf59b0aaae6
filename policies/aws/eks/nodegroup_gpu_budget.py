"""aws-eks-nodegroup-gpu-budget: the GPU node groups of a stack can not scale past the GPU node budget."""

from __future__ import annotations

from pulumi_policy import PolicyConfigSchema, ReportViolation, Severity, StackValidationArgs, StackValidationPolicy

from policies.aws.eks.nodegroups import NODE_GROUP, is_gpu_node_group
from policies.frameworks import CIS_EKS, SOC2, platform_baseline
from policies.props import config_value, get, number

DEFAULT_MAX_GPU_NODES = 16


def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    budget = int(number(config_value(args, "maxGpuNodes", DEFAULT_MAX_GPU_NODES)))
    groups = [r for r in args.resources if r.resource_type == NODE_GROUP and is_gpu_node_group(r.props)]
    sizes = {r.name: int(number(get(r.props, "scalingConfig", "maxSize"))) for r in groups}
    total = sum(sizes.values())
    if total > budget:
        detail = ", ".join(f"{name}={size}" for name, size in sorted(sizes.items()))
        report_violation(f"GPU node groups can scale to {total} nodes ({detail}); the budget is {budget}.")


aws_eks_nodegroup_gpu_budget = StackValidationPolicy(
    name="aws-eks-nodegroup-gpu-budget",
    description="The summed scalingConfig.maxSize of a stack's GPU node groups stays within maxGpuNodes.",
    validate=validate,
    config_schema=PolicyConfigSchema(properties={
        "maxGpuNodes": {"type": "integer", "minimum": 0, "default": DEFAULT_MAX_GPU_NODES},
    }),
    severity=Severity.MEDIUM,
    framework=platform_baseline("gpu-budget"),
    tags=["aws", "eks", "gpu", "cost", CIS_EKS, SOC2],
    remediation_steps="Lower maxSize of the GPU pools in stacks/Pulumi.<stack>.yaml, or raise maxGpuNodes in "
                      "policies/config/<env>.json with the FinOps owner's approval.",
    url="https://docs.aws.amazon.com/eks/latest/userguide/managed-node-groups.html",
)
