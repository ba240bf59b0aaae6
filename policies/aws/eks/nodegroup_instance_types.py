"""aws-eks-nodegroup-instance-types: node groups use approved instance families only."""

from __future__ import annotations

from pulumi_policy import (
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
)

from policies import gpu_catalog
from policies.aws.eks.nodegroups import NODE_GROUP
from policies.frameworks import CIS_EKS, ISO27001, SOC2, platform_baseline
from policies.props import config_value, get, items

GPU_FAMILIES = sorted(gpu_catalog.GPU_FAMILIES)
SYSTEM_FAMILIES = ["m5", "m6i", "m7i", "m7g", "c5", "c6i", "c7i", "c7g", "r5", "r6i", "r7i"]
DEFAULT_ALLOWED_FAMILIES = GPU_FAMILIES + SYSTEM_FAMILIES


def family(instance_type: str) -> str:
    return instance_type.split(".", 1)[0]


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != NODE_GROUP:
        return
    allowed = {str(f) for f in config_value(args, "allowedInstanceFamilies", DEFAULT_ALLOWED_FAMILIES)}
    for instance_type in (str(t) for t in items(get(args.props, "instanceTypes"))):
        if family(instance_type) not in allowed:
            report_violation(f"EKS node group '{args.name}' uses instance type '{instance_type}'; family "
                             f"'{family(instance_type)}' is not in allowedInstanceFamilies.")


aws_eks_nodegroup_instance_types = ResourceValidationPolicy(
    name="aws-eks-nodegroup-instance-types",
    description="EKS node groups use instance families from the allowlist (config allowedInstanceFamilies).",
    validate=validate,
    config_schema=PolicyConfigSchema(properties={
        "allowedInstanceFamilies": {"type": "array", "items": {"type": "string"},
                                    "default": DEFAULT_ALLOWED_FAMILIES},
    }),
    severity=Severity.MEDIUM,
    framework=platform_baseline("instance-families"),
    tags=["aws", "eks", "cost", CIS_EKS, SOC2, ISO27001],
    remediation_steps="Pick an instance type from policies/gpu_catalog.py, or have the platform team add the "
                      "family to allowedInstanceFamilies in policies/config/<env>.json.",
    url="https://docs.aws.amazon.com/ec2/latest/instancetypes/instance-types.html",
)
