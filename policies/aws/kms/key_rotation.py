"""aws-kms-key-rotation: customer managed keys rotate automatically."""

from __future__ import annotations

from pulumi_policy import ReportViolation, ResourceValidationArgs, ResourceValidationPolicy, Severity

from policies.frameworks import HIPAA, ISO27001, SOC2, aws_fsbp
from policies.props import describe, get, truthy

KEY = "aws:kms/key:Key"


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != KEY:
        return
    # Asymmetric and HMAC keys cannot rotate; only symmetric encryption keys are held to it.
    if get(args.props, "customerMasterKeySpec", default="SYMMETRIC_DEFAULT") != "SYMMETRIC_DEFAULT":
        return
    if not truthy(get(args.props, "enableKeyRotation")):
        report_violation(f"KMS key '{args.name}' has enableKeyRotation "
                         f"{describe(get(args.props, 'enableKeyRotation'))}; it must be true.")


aws_kms_key_rotation = ResourceValidationPolicy(
    name="aws-kms-key-rotation",
    description="Symmetric customer managed KMS keys have automatic key rotation enabled.",
    validate=validate,
    severity=Severity.MEDIUM,
    framework=aws_fsbp("KMS.4"),
    tags=["aws", "kms", "encryption", SOC2, ISO27001, HIPAA],
    remediation_steps="Set enableKeyRotation=True on the aws.kms.Key (infra/components/kms_key.py).",
    url="https://docs.aws.amazon.com/kms/latest/developerguide/rotate-keys.html",
)
