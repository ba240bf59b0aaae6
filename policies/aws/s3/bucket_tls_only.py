"""aws-s3-bucket-tls-only: every bucket policy denies requests not sent over TLS."""

from __future__ import annotations

import json

from pulumi_policy import ReportViolation, Severity, StackValidationArgs, StackValidationPolicy

from policies.aws.s3.buckets import POLICY, buckets, settings_for
from policies.frameworks import GDPR, HIPAA, ISO27001, SOC2, aws_fsbp
from policies.props import get, is_list, is_mapping


def denies_insecure_transport(document) -> bool:
    """Whether a bucket policy document (JSON string or mapping) has Deny when aws:SecureTransport is false."""
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError:
            return False
    statements = get(document, "Statement", default=[])
    for statement in statements if is_list(statements) else [statements]:
        if not is_mapping(statement) or statement.get("Effect") != "Deny":
            continue
        secure = get(statement, "Condition", "Bool", "aws:SecureTransport")
        if str(secure).lower() == "false":
            return True
    return False


def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    for bucket in buckets(args.resources):
        policies = settings_for(bucket, args.resources, POLICY)
        if not any(denies_insecure_transport(get(p.props, "policy")) for p in policies):
            report_violation(f"S3 bucket '{bucket.name}' has no bucket policy that denies requests "
                             "where aws:SecureTransport is false.", bucket.urn)


aws_s3_bucket_tls_only = StackValidationPolicy(
    name="aws-s3-bucket-tls-only",
    description="S3 buckets have a bucket policy that denies every request not sent over TLS.",
    validate=validate,
    severity=Severity.HIGH,
    framework=aws_fsbp("S3.5"),
    tags=["aws", "s3", "encryption-in-transit", SOC2, ISO27001, HIPAA, GDPR],
    remediation_steps="Attach a BucketPolicy with a Deny statement for s3:* on the bucket and its objects "
                      "with Condition Bool aws:SecureTransport 'false'.",
    url="https://docs.aws.amazon.com/AmazonS3/latest/userguide/security-best-practices.html",
)
