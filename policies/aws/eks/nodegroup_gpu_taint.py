"""aws-eks-nodegroup-gpu-taint: GPU nodes repel every pod that does not ask for a GPU."""

from __future__ import annotations

from pulumi_policy import ReportViolation, ResourceValidationArgs, ResourceValidationPolicy, Severity

from policies.aws.eks.nodegroups import NODE_GROUP, is_gpu_node_group
from policies.frameworks import CIS_EKS, ISO27001, SOC2, platform_baseline
from policies.props import get, items


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != NODE_GROUP or not is_gpu_node_group(args.props):
        return
    taints = items(get(args.props, "taints"))
    if not any(get(t, "key") == "nvidia.com/gpu" and get(t, "effect") == "NO_SCHEDULE" for t in taints):
        report_violation(f"GPU node group '{args.name}' ({get(args.props, 'amiType')}) has no "
                         "nvidia.com/gpu NO_SCHEDULE taint.")


aws_eks_nodegroup_gpu_taint = ResourceValidationPolicy(
    name="aws-eks-nodegroup-gpu-taint",
    description="GPU node groups (NVIDIA AMI) carry the nvidia.com/gpu NO_SCHEDULE taint.",
    validate=validate,
    severity=Severity.MEDIUM,
    framework=platform_baseline("gpu-placement"),
    tags=["aws", "eks", "gpu", "cost", CIS_EKS, SOC2, ISO27001],
    remediation_steps="Add taints=[{key: 'nvidia.com/gpu', value: 'true', effect: 'NO_SCHEDULE'}] to the "
                      "node group (infra/components/gpu_node_pool.py decides GPU pool taints).",
    url="https://docs.aws.amazon.com/eks/latest/userguide/node-taints-managed-node-groups.html",
)
