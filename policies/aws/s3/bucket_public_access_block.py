"""aws-s3-bucket-public-access-block: every bucket blocks all four kinds of public access."""

from __future__ import annotations

from pulumi_policy import ReportViolation, Severity, StackValidationArgs, StackValidationPolicy

from policies.aws.s3.buckets import PUBLIC_ACCESS_BLOCK, buckets, settings_for
from policies.frameworks import GDPR, HIPAA, ISO27001, SOC2, aws_fsbp
from policies.props import get, truthy

FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")


def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    for bucket in buckets(args.resources):
        blocks = settings_for(bucket, args.resources, PUBLIC_ACCESS_BLOCK)
        if not blocks:
            report_violation(f"S3 bucket '{bucket.name}' has no BucketPublicAccessBlock.", bucket.urn)
            continue
        for block in blocks:
            off = [flag for flag in FLAGS if not truthy(get(block.props, flag))]
            if off:
                report_violation(f"S3 bucket '{bucket.name}' public access block does not set "
                                 f"{', '.join(off)} to true.", bucket.urn)


aws_s3_bucket_public_access_block = StackValidationPolicy(
    name="aws-s3-bucket-public-access-block",
    description="S3 buckets have a public access block with all four settings true.",
    validate=validate,
    severity=Severity.CRITICAL,
    framework=aws_fsbp("S3.8"),
    tags=["aws", "s3", "public-access", SOC2, ISO27001, HIPAA, GDPR],
    remediation_steps="Add a BucketPublicAccessBlock for the bucket with blockPublicAcls, blockPublicPolicy, "
                      "ignorePublicAcls and restrictPublicBuckets all true.",
    url="https://docs.aws.amazon.com/AmazonS3/latest/userguide/access-control-block-public-access.html",
)
