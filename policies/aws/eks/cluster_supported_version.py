"""aws-eks-cluster-supported-version: the Kubernetes version is one the platform supports."""

from __future__ import annotations

from pulumi_policy import (
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
)

from policies.frameworks import CIS_EKS, ISO27001, SOC2, aws_fsbp
from policies.props import config_value, get

CLUSTER = "aws:eks/cluster:Cluster"
DEFAULT_SUPPORTED_VERSIONS = ["1.33", "1.34", "1.35"]


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != CLUSTER:
        return
    supported = [str(v) for v in config_value(args, "supportedVersions", DEFAULT_SUPPORTED_VERSIONS)]
    version = get(args.props, "version")
    if version is None:
        report_violation(f"EKS cluster '{args.name}' does not pin a Kubernetes version; "
                         f"supported: {', '.join(supported)}.")
    elif str(version) not in supported:
        report_violation(f"EKS cluster '{args.name}' runs Kubernetes {version}; "
                         f"supported: {', '.join(supported)}.")


aws_eks_cluster_supported_version = ResourceValidationPolicy(
    name="aws-eks-cluster-supported-version",
    description="EKS clusters pin a Kubernetes version from the supported list (config supportedVersions).",
    validate=validate,
    config_schema=PolicyConfigSchema(properties={
        "supportedVersions": {"type": "array", "items": {"type": "string"}, "default": DEFAULT_SUPPORTED_VERSIONS},
    }),
    severity=Severity.MEDIUM,
    framework=aws_fsbp("EKS.2"),
    tags=["aws", "eks", "patching", CIS_EKS, SOC2, ISO27001],
    remediation_steps="Set the cluster version in infra/versions.py to one of the supported versions and "
                      "upgrade one minor version at a time.",
    url="https://docs.aws.amazon.com/eks/latest/userguide/kubernetes-versions.html",
)
