"""Reading S3 lifecycle rules, wherever a program states them.

pulumi-aws v7 takes lifecycle rules in ``BucketLifecycleConfiguration`` (and its deprecated ``...V2`` alias):
``rules[]`` with ``status``, ``expiration.days|date`` and ``noncurrentVersionExpiration.noncurrentDays``.
The deprecated inline ``lifecycleRules`` of ``Bucket`` / ``BucketV2`` say the same with ``enabled``,
``expiration(s)`` and ``noncurrentVersionExpiration(s).days``. Single blocks may arrive as an object or as
a one-element list.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from policies.props import count, get, is_list, is_mapping, items, truthy

LIFECYCLE_CONFIGURATIONS = {
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
    "aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2",
}
INLINE_RULE_BUCKETS = {"aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2"}
# Components whose buckets hold logs only (infra/components/log_archive.py).
LOG_COMPONENTS = {"ai-platform:observability:LogArchive"}
LOG_WORDS = {"log", "logs", "audit", "trail", "cloudtrail", "flowlogs"}


@dataclass(frozen=True)
class Rule:
    """One enabled lifecycle rule, reduced to what decides how long objects are kept."""

    label: str
    expiration_days: float | None
    expiration_date: str | None
    noncurrent_days: float | None
    # "expiration" / "noncurrent" -> a days value that is no whole number of days (S3 refuses it; nothing to judge).
    unreadable: dict[str, Any] = field(default_factory=dict)


def _blocks(value: Any) -> list[Any]:
    if is_mapping(value):
        return [value]
    return [v for v in items(value) if is_mapping(v)] if is_list(value) else []


def _first(rule: Any, *keys: str, field: str) -> Any:
    for key in keys:
        for block in _blocks(get(rule, key)):
            value = get(block, field)
            if value is not None:
                return value
    return None


def _days(value: Any) -> float | None:
    return None if value is None else count(value)


def rules(resource_type: str, props: Any) -> Iterator[Rule]:
    """The enabled lifecycle rules ``props`` of a ``resource_type`` state; nothing for other types."""
    if resource_type in LIFECYCLE_CONFIGURATIONS:
        raw, inline = items(get(props, "rules")), False
    elif resource_type in INLINE_RULE_BUCKETS:
        raw, inline = items(get(props, "lifecycleRules")), True
    else:
        return
    for index, rule in enumerate(raw):
        # Only a rule that says it is off is skipped: one without a status would be refused by S3, and judging it
        # costs nothing.
        switch = get(rule, "enabled") if inline else get(rule, "status")
        if switch is not None and not (truthy(switch) if inline else str(switch).strip().lower() == "enabled"):
            continue
        label = str(get(rule, "id", default="") or f"#{index}")
        noncurrent = (_first(rule, "noncurrentVersionExpiration", "noncurrentVersionExpirations", field="days")
                      if inline else _first(rule, "noncurrentVersionExpiration", field="noncurrentDays"))
        date = _first(rule, "expiration", "expirations", field="date")
        expiration = _first(rule, "expiration", "expirations", field="days")
        unreadable = {name: raw for name, raw in (("expiration", expiration), ("noncurrent", noncurrent))
                      if raw is not None and _days(raw) is None}
        yield Rule(label=label, expiration_days=_days(expiration), expiration_date=str(date) if date else None,
                   noncurrent_days=_days(noncurrent), unreadable=unreadable)


def _words(text: str) -> set[str]:
    return set(re.split(r"[^a-z0-9]+", text.lower()))


def holds_logs(name: str, urn: str, rule_labels: list[str]) -> bool:
    """Whether a bucket (or its lifecycle configuration) holds logs: access logs, log snapshots, audit trails.

    Told from what is known in every preview: the resource's logical name (the platform names settings after
    their bucket, ``<name>-access-logs``), the components it belongs to (the log archive), and its rule ids
    (``expire-access-logs``). A lifecycle configuration's ``bucket`` is not read: it is unknown until the
    bucket exists, and reading it would skip the check in a first preview.
    """
    parts = urn.split("::")
    ancestors = set(parts[2].split("$")[:-1]) if len(parts) >= 4 else set()
    return bool(ancestors & LOG_COMPONENTS or _words(name) & LOG_WORDS
                or any(_words(label) & LOG_WORDS for label in rule_labels))
