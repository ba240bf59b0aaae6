"""aws-s3-bucket-access-logging: every bucket that is not itself a log target logs its access."""

from __future__ import annotations

from pulumi_policy import ReportViolation, Severity, StackValidationArgs, StackValidationPolicy

from policies.aws.s3.buckets import LOGGING, buckets, is_log_target, settings_for
from policies.frameworks import HIPAA, ISO27001, SOC2, aws_fsbp


def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    for bucket in buckets(args.resources):
        # A log bucket logging into itself (or another log bucket) loops; CIS exempts the target.
        if is_log_target(bucket, args.resources):
            continue
        if not settings_for(bucket, args.resources, LOGGING):
            report_violation(f"S3 bucket '{bucket.name}' has no BucketLogging (server access logging).",
                             bucket.urn)


aws_s3_bucket_access_logging = StackValidationPolicy(
    name="aws-s3-bucket-access-logging",
    description="S3 buckets other than access-log targets have server access logging enabled.",
    validate=validate,
    severity=Severity.MEDIUM,
    framework=aws_fsbp("S3.9"),
    tags=["aws", "s3", "logging", SOC2, ISO27001, HIPAA],
    remediation_steps="Add a BucketLogging for the bucket whose targetBucket is the access-log bucket.",
    url="https://docs.aws.amazon.com/AmazonS3/latest/userguide/ServerLogs.html",
)
