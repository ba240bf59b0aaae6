"""aws-cloudwatch-loggroup-retention: CloudWatch log groups keep events at least ``minRetentionDays``.

The platform's log groups hold the EKS control plane's audit, API and authenticator logs and the VPC flow
logs (both take stack config cluster.logRetentionDays). AWS FSBP CloudWatch.16 asks for a year; SOC 2 CC7.2,
ISO 27001 A.8.15 and HIPAA 164.312(b) / 164.316(b)(2) ask that audit records outlive the incidents they
explain. A group without retentionInDays (or 0) never expires and passes. The DELIVERY log class keeps
events one day whatever retentionInDays says.
"""

from __future__ import annotations

from pulumi_policy import (
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
)

from policies.frameworks import HIPAA, ISO27001, SOC2, aws_fsbp
from policies.props import describe, get, number
from policies.retention import days_schema, minimum_days, show

LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
DEFAULT_MIN_RETENTION_DAYS = 365
# https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CloudWatch_Logs_Log_Classes.html
DELIVERY_CLASS_DAYS = 1


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != LOG_GROUP:
        return
    minimum = minimum_days(args, "minRetentionDays", DEFAULT_MIN_RETENTION_DAYS)
    if str(get(args.props, "logGroupClass", default="")).upper() == "DELIVERY":
        if minimum > DELIVERY_CLASS_DAYS:
            report_violation(f"CloudWatch log group '{args.name}' is of log class DELIVERY, which keeps events "
                             f"{DELIVERY_CLASS_DAYS} day; this environment requires at least {minimum} days "
                             "(minRetentionDays).")
        return
    value = get(args.props, "retentionInDays")
    if value is None or isinstance(value, bool):
        return
    days = number(value, default=-1)
    if days < 0:
        report_violation(f"CloudWatch log group '{args.name}' has an unreadable retentionInDays {describe(value)!r}.")
    elif 0 < days < minimum:
        report_violation(f"CloudWatch log group '{args.name}' keeps events {show(days)} days; this environment "
                         f"requires at least {minimum} days (minRetentionDays).")


aws_cloudwatch_loggroup_retention = ResourceValidationPolicy(
    name="aws-cloudwatch-loggroup-retention",
    description="CloudWatch log groups (control-plane audit logs, VPC flow logs) keep events at least "
                "minRetentionDays, or never expire (SOC 2 CC7.2, ISO 27001 A.8.15, HIPAA 164.316(b)(2)).",
    validate=validate,
    config_schema=PolicyConfigSchema(properties={
        "minRetentionDays": days_schema(DEFAULT_MIN_RETENTION_DAYS, "Fewest days a log group may keep events."),
    }),
    severity=Severity.MEDIUM,
    framework=aws_fsbp("CloudWatch.16"),
    tags=["aws", "cloudwatch", "logging", "data-retention", SOC2, ISO27001, HIPAA],
    remediation_steps="Raise stack config cluster.logRetentionDays (the control-plane and flow log groups) to at "
                      "least the environment's minRetentionDays (policies/config/<env>.json), one of CloudWatch's "
                      "retention periods.",
    url="https://docs.aws.amazon.com/securityhub/latest/userguide/cloudwatch-controls.html#cloudwatch-16",
)
