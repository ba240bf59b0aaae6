"""aws-s3-bucket-replication: the model store and the log archive are replicated to another region, KMS-encrypted.

A region-wide outage must not take the platform's data with it: the models teams serve and the log snapshots
compliance keeps. Each data bucket of a `ModelStore` or `LogArchive` component (not its access-log bucket) needs an
enabled replication rule for the whole bucket that replicates SSE-KMS objects (`sseKmsEncryptedObjects`), encrypts
the replicas with a customer key (`replicaKmsKeyId`), and targets a bucket of the stack in another region (judged
from the buckets' `region`). Where `requireReplicationTimeControl` is set (prod), the rule must also use S3
Replication Time Control with its metrics, on which the stated recovery point rests. With `requireReplication` off
(dev, staging) a bucket without replication passes; one that replicates is still judged. Controls: SOC 2 A1.2
(recovery infrastructure), ISO 27001 A.5.30 (ICT readiness for business continuity) and A.8.14 (redundancy).
"""

from __future__ import annotations

from collections.abc import Iterable

from pulumi_policy import (
    PolicyConfigSchema,
    PolicyResource,
    ReportViolation,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)

from policies.aws.s3.buckets import buckets, is_log_target
from policies.frameworks import ISO27001, SOC2, platform_baseline
from policies.props import config_value, get, items

REPLICATION = "aws:s3/bucketReplicationConfig:BucketReplicationConfig"
# The components whose data buckets must be replicated, and what the platform calls them.
REPLICATED_OWNERS = {"ai-platform:storage:ModelStore": "model store",
                     "ai-platform:observability:LogArchive": "log archive"}


def owner(urn: str) -> str | None:
    """What the nearest owning component calls the resource ``urn`` (`model store`, `log archive`), if any.

    A URN's third `::` part is the qualified type: the types of its ancestors and its own, `$`-separated.
    """
    parts = urn.split("::")
    ancestors = parts[2].split("$")[:-1] if len(parts) >= 4 else []
    return next((REPLICATED_OWNERS[t] for t in reversed(ancestors) if t in REPLICATED_OWNERS), None)


def _enabled(value) -> bool:
    return get(value, "status", default="") == "Enabled"


def _whole_bucket(rule) -> bool:
    prefix = get(rule, "filter", "prefix", default="") or get(rule, "prefix", default="")
    return not prefix and not get(rule, "filter", "tag") and not get(rule, "filter", "and")


def rule_problems(rule, source: PolicyResource, resources: Iterable[PolicyResource], require_rtc: bool) -> list[str]:
    """What keeps one enabled rule from copying the whole bucket, encrypted, into another region in time."""
    problems = []
    if not _whole_bucket(rule):
        problems.append("replicates only part of the bucket (a prefix or tag filter)")
    if not _enabled(get(rule, "sourceSelectionCriteria", "sseKmsEncryptedObjects")):
        problems.append("leaves SSE-KMS objects out (sourceSelectionCriteria.sseKmsEncryptedObjects is not Enabled)")
    destination = get(rule, "destination", default={})
    if not get(destination, "encryptionConfiguration", "replicaKmsKeyId"):
        problems.append("does not encrypt the replicas with a customer key "
                        "(destination.encryptionConfiguration.replicaKmsKeyId)")
    target = str(get(destination, "bucket", default=""))
    replica = next((b for b in buckets(resources) if str(get(b.props, "arn", default="")) == target), None)
    here, there = get(source.props, "region"), get(replica.props, "region") if replica else None
    if replica is None:
        problems.append(f"targets {target or 'no bucket'}, which is not a bucket of this stack: its region is unknown")
    elif not here or not there or here == there:
        problems.append(f"targets a bucket in {there or 'an unknown region'}, not in another region than the "
                        f"source's ({here or 'unknown'})")
    if require_rtc and not (_enabled(get(destination, "replicationTime")) and _enabled(get(destination, "metrics"))):
        problems.append("does not use S3 Replication Time Control with its metrics "
                        "(destination.replicationTime and destination.metrics Enabled)")
    return problems


def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    require = bool(config_value(args, "requireReplication", True))
    require_rtc = bool(config_value(args, "requireReplicationTimeControl", False))
    configurations = [r for r in args.resources if r.resource_type == REPLICATION]
    for bucket in buckets(args.resources):
        what = owner(bucket.urn)
        if what is None or is_log_target(bucket, args.resources):
            continue
        names = {str(v) for v in (get(bucket.props, "bucket"), get(bucket.props, "id")) if v}
        rules = [rule for c in configurations if str(get(c.props, "bucket", default="")) in names
                 for rule in items(get(c.props, "rules")) if _enabled(rule)]
        if not rules:
            if require:
                report_violation(f"S3 bucket '{bucket.name}' ({what}) is not replicated to another region: a regional "
                                 "outage would take its data with it.", bucket.urn)
            continue
        found = [rule_problems(rule, bucket, args.resources, require_rtc) for rule in rules]
        if all(found):
            # Every enabled rule falls short; the first one's shortcomings say what to fix.
            report_violation(f"S3 bucket '{bucket.name}' ({what}) replication {'; '.join(found[0])}.", bucket.urn)


aws_s3_bucket_replication = StackValidationPolicy(
    name="aws-s3-bucket-replication",
    description="The model store and the log archive are replicated whole to a bucket in another region, SSE-KMS "
                "objects included and replicas encrypted with a customer key, with Replication Time Control where "
                "required (SOC 2 A1.2, ISO 27001 A.5.30).",
    validate=validate,
    config_schema=PolicyConfigSchema(properties={
        "requireReplication": {"type": "boolean", "default": True,
                               "description": "Whether every model store and log archive bucket must replicate."},
        "requireReplicationTimeControl": {"type": "boolean", "default": False,
                                          "description": "Whether replication must use S3 Replication Time Control."},
    }),
    severity=Severity.HIGH,
    framework=platform_baseline("disaster-recovery"),
    tags=["aws", "s3", "resilience", "disaster-recovery", SOC2, ISO27001],
    remediation_steps="Set stack config ai-platform:recovery.region to an approved region other than aws:region "
                      "(and replicationTimeControl: true in prod); infra/components/replication.py then creates the "
                      "replicas, their keys and the replication configurations. See docs/recovery.md.",
    url="https://docs.aws.amazon.com/AmazonS3/latest/userguide/replication.html",
)
