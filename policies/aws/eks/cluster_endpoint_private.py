"""aws-eks-cluster-endpoint-private: the API endpoint is private, or public only to an allowlist."""

from __future__ import annotations

from pulumi_policy import ReportViolation, ResourceValidationArgs, ResourceValidationPolicy, Severity

from policies.frameworks import ISO27001, SOC2, cis_eks
from policies.props import get, items, truthy

CLUSTER = "aws:eks/cluster:Cluster"
OPEN = {"0.0.0.0/0", "::/0"}


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != CLUSTER:
        return
    vpc = get(args.props, "vpcConfig", default={})
    # The provider defaults endpointPublicAccess to true when it is not set.
    if not truthy(get(vpc, "endpointPublicAccess", default=True)):
        return
    cidrs = [str(c) for c in items(get(vpc, "publicAccessCidrs"))]
    if not cidrs:
        report_violation(f"EKS cluster '{args.name}' has a public endpoint open to 0.0.0.0/0 "
                         "(no publicAccessCidrs).")
    for cidr in cidrs:
        if cidr in OPEN:
            report_violation(f"EKS cluster '{args.name}' has a public endpoint open to {cidr}.")


aws_eks_cluster_endpoint_private = ResourceValidationPolicy(
    name="aws-eks-cluster-endpoint-private",
    description="EKS cluster API endpoints are private, or public only to an allowlist without 0.0.0.0/0.",
    validate=validate,
    severity=Severity.HIGH,
    framework=cis_eks("5.4.2"),
    tags=["aws", "eks", "network", SOC2, ISO27001],
    remediation_steps="Set vpcConfig.endpointPublicAccess=False (reach the API through the VPC), or list the "
                      "admin networks in vpcConfig.publicAccessCidrs.",
    url="https://docs.aws.amazon.com/eks/latest/userguide/cluster-endpoint.html",
)
