"""aws-s3-bucket-log-retention: buckets that hold logs keep them at least ``minRetentionDays``.

The access-log buckets of the model store and the log archive, and the log archive itself, are audit
evidence: who read or replaced which model, and the platform's own logs. A lifecycle rule that expires their
objects sooner than the environment's minimum (or on a fixed date, whatever their age) shortens the window
an investigation can look back on. Controls: SOC 2 CC7.2 (monitoring), ISO 27001 A.8.15 (logging),
HIPAA 164.312(b) and 164.316(b)(2) (audit records kept).
"""

from __future__ import annotations

from pulumi_policy import (
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
)

from policies.aws.s3.lifecycle import holds_logs, rules
from policies.frameworks import HIPAA, ISO27001, SOC2, platform_baseline
from policies.props import describe
from policies.retention import days_schema, minimum_days, show

DEFAULT_MIN_RETENTION_DAYS = 365


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    found = list(rules(args.resource_type, args.props))
    if not found or not holds_logs(args.name, args.urn, [r.label for r in found]):
        return
    minimum = minimum_days(args, "minRetentionDays", DEFAULT_MIN_RETENTION_DAYS)
    for rule in found:
        if "expiration" in rule.unreadable:
            report_violation(f"Log bucket lifecycle '{args.name}' rule {rule.label} has an unreadable expiration days "
                             f"{describe(rule.unreadable['expiration'])!r} "
                             "(S3 takes a whole number of days, at least 1); "
                             f"logs must be kept at least {minimum} days (minRetentionDays).")
        if rule.expiration_date:
            report_violation(f"Log bucket lifecycle '{args.name}' rule {rule.label} expires objects on "
                             f"{rule.expiration_date} whatever their age; logs must be kept at least {minimum} days "
                             "(minRetentionDays).")
        if rule.expiration_days is not None and rule.expiration_days < minimum:
            report_violation(f"Log bucket lifecycle '{args.name}' rule {rule.label} expires objects after "
                             f"{show(rule.expiration_days)} days; logs must be kept at least {minimum} days "
                             "(minRetentionDays).")


aws_s3_bucket_log_retention = ResourceValidationPolicy(
    name="aws-s3-bucket-log-retention",
    description="Lifecycle rules of buckets that hold logs (access logs, the log archive) keep objects at least "
                "minRetentionDays (SOC 2 CC7.2, ISO 27001 A.8.15, HIPAA 164.316(b)(2)).",
    validate=validate,
    config_schema=PolicyConfigSchema(properties={
        "minRetentionDays": days_schema(DEFAULT_MIN_RETENTION_DAYS, "Fewest days a log object may be kept."),
    }),
    severity=Severity.MEDIUM,
    framework=platform_baseline("log-retention"),
    tags=["aws", "s3", "logging", "data-retention", SOC2, ISO27001, HIPAA],
    remediation_steps="Raise stack config modelStore.accessLogExpirationDays (the model store's access logs) to "
                      "the environment's minRetentionDays (policies/config/<env>.json); the log archive's access "
                      "logs expire after ACCESS_LOG_EXPIRATION_DAYS (infra/components/log_archive.py) and its "
                      "snapshots only through Elasticsearch's snapshot lifecycle, never a lifecycle rule.",
    url="https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-lifecycle-mgmt.html",
)
