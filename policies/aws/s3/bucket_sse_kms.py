"""aws-s3-bucket-sse-kms: every bucket is encrypted with a customer KMS key by default."""

from __future__ import annotations

from pulumi_policy import ReportViolation, Severity, StackValidationArgs, StackValidationPolicy

from policies.aws.s3.buckets import SSE, buckets, is_log_target, settings_for
from policies.frameworks import GDPR, HIPAA, ISO27001, SOC2, aws_fsbp
from policies.props import get, items


def _algorithms(configuration) -> list[tuple[str, str]]:
    return [(str(get(rule, "applyServerSideEncryptionByDefault", "sseAlgorithm", default="")),
             str(get(rule, "applyServerSideEncryptionByDefault", "kmsMasterKeyId", default="")))
            for rule in items(get(configuration.props, "rules"))]


def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    for bucket in buckets(args.resources):
        configurations = settings_for(bucket, args.resources, SSE)
        if not configurations:
            report_violation(f"S3 bucket '{bucket.name}' has no BucketServerSideEncryptionConfiguration.", bucket.urn)
            continue
        # Access-log targets may use SSE-S3: S3 server access logging cannot deliver to SSE-KMS buckets.
        allowed = {"aws:kms", "aws:kms:dsse"} | ({"AES256"} if is_log_target(bucket, args.resources) else set())
        for algorithm, _key in (pair for c in configurations for pair in _algorithms(c)):
            if algorithm not in allowed:
                report_violation(f"S3 bucket '{bucket.name}' is encrypted with '{algorithm}'; "
                                 f"allowed: {', '.join(sorted(allowed))}.", bucket.urn)


aws_s3_bucket_sse_kms = StackValidationPolicy(
    name="aws-s3-bucket-sse-kms",
    description="S3 buckets are encrypted with SSE-KMS by default (SSE-S3 only for server access-log targets).",
    validate=validate,
    severity=Severity.HIGH,
    framework=aws_fsbp("S3.17"),
    tags=["aws", "s3", "encryption", SOC2, ISO27001, HIPAA, GDPR],
    remediation_steps="Give the bucket a BucketServerSideEncryptionConfiguration whose rule applies "
                      "sseAlgorithm 'aws:kms' with the models CustomerKey (infra/components/model_store.py).",
    url="https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html",
)
