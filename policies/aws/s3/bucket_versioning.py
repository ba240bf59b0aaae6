"""aws-s3-bucket-versioning: every bucket has versioning Enabled."""

from __future__ import annotations

from pulumi_policy import ReportViolation, Severity, StackValidationArgs, StackValidationPolicy

from policies.aws.s3.buckets import VERSIONING, buckets, settings_for
from policies.frameworks import ISO27001, SOC2, aws_fsbp
from policies.props import get


def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    for bucket in buckets(args.resources):
        versionings = settings_for(bucket, args.resources, VERSIONING)
        if not versionings:
            report_violation(f"S3 bucket '{bucket.name}' has no BucketVersioning.", bucket.urn)
        for versioning in versionings:
            status = get(versioning.props, "versioningConfiguration", "status", default="")
            if status != "Enabled":
                report_violation(f"S3 bucket '{bucket.name}' versioning status is '{status}', not 'Enabled'.",
                                 bucket.urn)


aws_s3_bucket_versioning = StackValidationPolicy(
    name="aws-s3-bucket-versioning",
    description="S3 buckets have versioning enabled, so a model or log object can be recovered.",
    validate=validate,
    severity=Severity.MEDIUM,
    framework=aws_fsbp("S3.14"),
    tags=["aws", "s3", "resilience", SOC2, ISO27001],
    remediation_steps="Add a BucketVersioning for the bucket with versioningConfiguration.status 'Enabled'.",
    url="https://docs.aws.amazon.com/AmazonS3/latest/userguide/Versioning.html",
)
