"""aws-eks-cluster-audit-logging: control plane audit logs go to CloudWatch."""

from __future__ import annotations

from pulumi_policy import ReportViolation, ResourceValidationArgs, ResourceValidationPolicy, Severity

from policies.frameworks import HIPAA, ISO27001, SOC2, cis_eks
from policies.props import get, items

CLUSTER = "aws:eks/cluster:Cluster"
REQUIRED = ("api", "audit", "authenticator")


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != CLUSTER:
        return
    enabled = {str(t) for t in items(get(args.props, "enabledClusterLogTypes"))}
    missing = [t for t in REQUIRED if t not in enabled]
    if missing:
        report_violation(f"EKS cluster '{args.name}' does not enable control plane log types "
                         f"{', '.join(missing)}.")


aws_eks_cluster_audit_logging = ResourceValidationPolicy(
    name="aws-eks-cluster-audit-logging",
    description="EKS clusters send the api, audit and authenticator control plane logs to CloudWatch.",
    validate=validate,
    severity=Severity.MEDIUM,
    framework=cis_eks("2.1.1"),
    tags=["aws", "eks", "logging", SOC2, ISO27001, HIPAA],
    remediation_steps="Add 'api', 'audit' and 'authenticator' to enabledClusterLogTypes of the aws.eks.Cluster.",
    url="https://docs.aws.amazon.com/eks/latest/userguide/control-plane-logs.html",
)
