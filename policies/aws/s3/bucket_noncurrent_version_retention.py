"""aws-s3-bucket-noncurrent-version-retention: replaced or deleted objects stay recoverable ``minNoncurrentDays``.

Every platform bucket is versioned so that an overwritten or deleted object (a model version, a log snapshot
file, an access log) can be restored. A noncurrentVersionExpiration shorter than the environment's minimum
closes that recovery window before anyone notices the mistake or the tampering. Controls: SOC 2 CC7.2 and
A1.2 (recovery), ISO 27001 A.8.13 (backup) and A.8.15, HIPAA 164.308(a)(7)(ii)(A) (data backup) and
164.316(b)(2).
"""

from __future__ import annotations

from pulumi_policy import (
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
)

from policies.aws.s3.lifecycle import rules
from policies.frameworks import HIPAA, ISO27001, SOC2, platform_baseline
from policies.props import describe
from policies.retention import days_schema, minimum_days, show

DEFAULT_MIN_NONCURRENT_DAYS = 30


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    found = list(rules(args.resource_type, args.props))
    if not found:
        return
    minimum = minimum_days(args, "minNoncurrentDays", DEFAULT_MIN_NONCURRENT_DAYS)
    for rule in found:
        if "noncurrent" in rule.unreadable:
            report_violation(f"S3 lifecycle '{args.name}' rule {rule.label} has an unreadable noncurrent days "
                             f"{describe(rule.unreadable['noncurrent'])!r} "
                             "(S3 takes a whole number of days, at least 1); "
                             f"they must stay recoverable at least {minimum} days (minNoncurrentDays).")
        if rule.noncurrent_days is not None and rule.noncurrent_days < minimum:
            report_violation(f"S3 lifecycle '{args.name}' rule {rule.label} deletes replaced or deleted object "
                             f"versions after {show(rule.noncurrent_days)} days; they must stay recoverable at least "
                             f"{minimum} days (minNoncurrentDays).")


aws_s3_bucket_noncurrent_version_retention = ResourceValidationPolicy(
    name="aws-s3-bucket-noncurrent-version-retention",
    description="Lifecycle rules keep noncurrent (replaced or deleted) object versions at least minNoncurrentDays, "
                "so models and logs stay recoverable (ISO 27001 A.8.13, HIPAA 164.308(a)(7), SOC 2 A1.2).",
    validate=validate,
    config_schema=PolicyConfigSchema(properties={
        "minNoncurrentDays": days_schema(DEFAULT_MIN_NONCURRENT_DAYS,
                                         "Fewest days a replaced or deleted object version stays recoverable."),
    }),
    severity=Severity.MEDIUM,
    framework=platform_baseline("version-recovery"),
    tags=["aws", "s3", "backup", "data-retention", SOC2, ISO27001, HIPAA],
    remediation_steps="Raise stack config modelStore.noncurrentVersionExpirationDays (the model store) to the "
                      "environment's minNoncurrentDays (policies/config/<env>.json); the log archive and the "
                      "access-log buckets take theirs from NONCURRENT_VERSION_DAYS (infra/components/log_archive.py) "
                      "and ACCESS_LOG_NONCURRENT_DAYS (infra/components/s3_bucket.py).",
    url="https://docs.aws.amazon.com/AmazonS3/latest/userguide/lifecycle-configuration-examples.html",
)
