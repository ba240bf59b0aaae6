"""aws-eks-nodegroup-launch-template: node groups launch from a launch template."""

from __future__ import annotations

from pulumi_policy import ReportViolation, ResourceValidationArgs, ResourceValidationPolicy, Severity

from policies.aws.eks.nodegroups import NODE_GROUP
from policies.frameworks import CIS_EKS, ISO27001, SOC2, aws_fsbp
from policies.props import get


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != NODE_GROUP:
        return
    template = get(args.props, "launchTemplate")
    if template is None or not (get(template, "id") or get(template, "name")):
        report_violation(f"EKS node group '{args.name}' has no launchTemplate (id or name); its nodes would "
                         "get IMDSv1 and unencrypted root volumes.")


aws_eks_nodegroup_launch_template = ResourceValidationPolicy(
    name="aws-eks-nodegroup-launch-template",
    description="EKS managed node groups use a launch template (which enforces IMDSv2 and encrypted volumes).",
    validate=validate,
    severity=Severity.HIGH,
    framework=aws_fsbp("EC2.8"),
    tags=["aws", "eks", "nodes", CIS_EKS, SOC2, ISO27001],
    remediation_steps="Give the node group launchTemplate={id, version} from NodeLaunchTemplate "
                      "(infra/components/node_launch_template.py).",
    url="https://docs.aws.amazon.com/eks/latest/userguide/launch-templates.html",
)
