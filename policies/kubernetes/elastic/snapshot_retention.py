"""kubernetes-elastic-snapshot-retention: Elasticsearch keeps log snapshots at least ``minRetentionDays``.

ECK has no resource for snapshot lifecycle (SLM) policies, so the platform PUTs the policy's body from a
ConfigMap (infra/components/log_retention.py, ``slm-policy.json``); this policy reads every ConfigMap value
that is an SLM policy body (a JSON object with ``schedule`` and ``repository``). Its ``retention.expire_after``
is how long the archive keeps each snapshot, and with it the platform's logs once the index lifecycle deleted
them from the cluster: audit evidence (SOC 2 CC7.2, ISO 27001 A.8.15, HIPAA 164.316(b)(2)). ``max_count``
caps the number kept; the platform snapshots daily, so a cap below the minimum in days shortens the window.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pulumi_policy import (
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
)

from policies.frameworks import HIPAA, ISO27001, SOC2, platform_baseline
from policies.props import get, is_mapping, number
from policies.retention import days_schema, minimum_days, show

CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
DEFAULT_MIN_RETENTION_DAYS = 365
# Elasticsearch time units, in days.
# https://www.elastic.co/docs/reference/elasticsearch/rest-apis/api-conventions#time-units
UNITS = {"d": 1.0, "h": 1 / 24, "m": 1 / 1440, "s": 1 / 86400, "ms": 1 / 86_400_000,
         "micros": 1 / 86_400_000_000, "nanos": 1 / 86_400_000_000_000}
TIME = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(d|h|m|s|ms|micros|nanos)\s*$")


def slm_policies(props: Any) -> list[tuple[str, dict[str, Any]]]:
    """(data key, body) of every SLM policy body in a ConfigMap's data."""
    data = get(props, "data", default={})
    found = []
    for key in data if is_mapping(data) else []:
        value = data[key]
        if not isinstance(value, str):
            continue
        try:
            body = json.loads(value)
        except ValueError:
            continue
        if isinstance(body, dict) and "schedule" in body and "repository" in body:
            found.append((str(key), body))
    return found


def days_of(value: str) -> float | None:
    match = TIME.match(value)
    return float(match.group(1)) * UNITS[match.group(2)] if match else None


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != CONFIG_MAP:
        return
    for key, body in slm_policies(args.props):
        minimum = minimum_days(args, "minRetentionDays", DEFAULT_MIN_RETENTION_DAYS)
        where = f"Snapshot lifecycle policy '{key}' of ConfigMap '{args.name}'"
        retention = body.get("retention")
        if retention is None:
            continue  # nothing expires
        if not isinstance(retention, dict):
            report_violation(f"{where} has an unreadable retention {json.dumps(retention)}.")
            continue
        expire_after = retention.get("expire_after")
        if expire_after is not None:
            days = days_of(str(expire_after))
            if days is None:
                report_violation(f"{where} has an unreadable retention.expire_after {json.dumps(expire_after)}.")
            elif days < minimum:
                report_violation(f"{where} expires snapshots after {expire_after}; this environment requires at "
                                 f"least {minimum} days (minRetentionDays).")
        max_count = retention.get("max_count")
        if max_count is not None:
            count = number(max_count, default=-1)
            if count < minimum:
                report_violation(f"{where} keeps at most {show(count) if count >= 0 else json.dumps(max_count)} "
                                 f"snapshots (retention.max_count), fewer than one a day for the {minimum} days this "
                                 "environment requires (minRetentionDays).")


kubernetes_elastic_snapshot_retention = ResourceValidationPolicy(
    name="kubernetes-elastic-snapshot-retention",
    description="Elasticsearch snapshot lifecycle policies keep log snapshots at least minRetentionDays "
                "(SOC 2 CC7.2, ISO 27001 A.8.15, HIPAA 164.316(b)(2)).",
    validate=validate,
    config_schema=PolicyConfigSchema(properties={
        "minRetentionDays": days_schema(DEFAULT_MIN_RETENTION_DAYS, "Fewest days a log snapshot may be kept."),
    }),
    severity=Severity.MEDIUM,
    framework=platform_baseline("log-retention"),
    tags=["kubernetes", "elasticsearch", "logging", "data-retention", SOC2, ISO27001, HIPAA],
    remediation_steps="Raise stack config observability.logs.snapshotRetentionDays to at least the environment's "
                      "minRetentionDays (policies/config/<env>.json); the setup Job PUTs it as the SLM policy's "
                      "retention.expire_after (infra/components/log_retention.py). Do not set retention.max_count.",
    url="https://www.elastic.co/docs/deploy-manage/tools/snapshot-and-restore/create-snapshots",
)
