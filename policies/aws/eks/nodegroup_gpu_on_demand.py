"""aws-eks-nodegroup-gpu-on-demand: GPU pools run on on-demand capacity where availability matters."""

from __future__ import annotations

from pulumi_policy import (
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
)

from policies.aws.eks.nodegroups import NODE_GROUP, is_gpu_node_group
from policies.frameworks import ISO27001, SOC2, platform_baseline
from policies.props import config_value, get, truthy


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != NODE_GROUP or not is_gpu_node_group(args.props):
        return
    if truthy(config_value(args, "allowSpot", False)):
        return
    # EKS defaults capacityType to ON_DEMAND when it is not set.
    capacity = str(get(args.props, "capacityType", default="ON_DEMAND"))
    if capacity != "ON_DEMAND":
        report_violation(f"GPU node group '{args.name}' uses {capacity} capacity: EC2 may reclaim its nodes with "
                         "two minutes' notice, taking serving replicas down; use ON_DEMAND here.")


aws_eks_nodegroup_gpu_on_demand = ResourceValidationPolicy(
    name="aws-eks-nodegroup-gpu-on-demand",
    description="GPU node groups use ON_DEMAND capacity unless the environment allows spot (config allowSpot).",
    validate=validate,
    config_schema=PolicyConfigSchema(properties={"allowSpot": {"type": "boolean", "default": False}}),
    severity=Severity.MEDIUM,
    framework=platform_baseline("gpu-availability"),
    tags=["aws", "eks", "gpu", "availability", SOC2, ISO27001],
    remediation_steps="Set capacityType: ON_DEMAND on the pool in stacks/Pulumi.<stack>.yaml (spot belongs to dev "
                      "and staging, where policies/config/<env>.json sets allowSpot).",
    url="https://docs.aws.amazon.com/eks/latest/userguide/managed-node-groups.html#managed-node-group-capacity-types",
)
