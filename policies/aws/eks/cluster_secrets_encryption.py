"""aws-eks-cluster-secrets-encryption: Kubernetes secrets are envelope-encrypted with a KMS key."""

from __future__ import annotations

from pulumi_policy import ReportViolation, ResourceValidationArgs, ResourceValidationPolicy, Severity

from policies.frameworks import GDPR, HIPAA, ISO27001, SOC2, cis_eks
from policies.props import get, items

CLUSTER = "aws:eks/cluster:Cluster"


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != CLUSTER:
        return
    encryption = get(args.props, "encryptionConfig")
    if encryption is None:
        report_violation(f"EKS cluster '{args.name}' has no encryptionConfig for secrets.")
        return
    if "secrets" not in [str(r) for r in items(get(encryption, "resources"))]:
        report_violation(f"EKS cluster '{args.name}' encryptionConfig does not cover 'secrets'.")
    if not get(encryption, "provider", "keyArn"):
        report_violation(f"EKS cluster '{args.name}' encryptionConfig has no provider.keyArn.")


aws_eks_cluster_secrets_encryption = ResourceValidationPolicy(
    name="aws-eks-cluster-secrets-encryption",
    description="EKS clusters envelope-encrypt Kubernetes secrets with a customer managed KMS key.",
    validate=validate,
    severity=Severity.HIGH,
    framework=cis_eks("5.3.1"),
    tags=["aws", "eks", "encryption", SOC2, ISO27001, HIPAA, GDPR],
    remediation_steps="Set encryptionConfig={resources: ['secrets'], provider: {keyArn: <secrets key ARN>}} "
                      "on the aws.eks.Cluster (infra/components/cluster.py).",
    url="https://docs.aws.amazon.com/eks/latest/userguide/enable-kms.html",
)
