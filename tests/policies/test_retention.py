"""Retention and recovery windows: log groups, log buckets, noncurrent versions and log snapshots.

Compliant baselines are what the prod preview shows; each mutation is caught with its exact message. The
per-environment minimums come from the pack config files, and the stack config's prod minimums and defaults
must agree with them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from pulumi_policy import ResourceValidationArgs, ResourceValidationPolicy

from infra.components import log_archive, s3_bucket
from infra.components.log_retention import setup_bodies
from infra.config import ClusterConfig, ModelStoreConfig
from infra.config.observability import ENVIRONMENT_DEFAULTS, PROD_MINIMUMS
from policies.aws.cloudwatch.loggroup_retention import LOG_GROUP, aws_cloudwatch_loggroup_retention
from policies.aws.s3.bucket_log_retention import aws_s3_bucket_log_retention
from policies.aws.s3.bucket_noncurrent_version_retention import aws_s3_bucket_noncurrent_version_retention
from policies.kubernetes.elastic.snapshot_retention import CONFIG_MAP, kubernetes_elastic_snapshot_retention
from tests.conftest import aip
from tests.infra.test_config import platform, problems
from tests.policies.support import DELETE, engine_props, mutate, options

ROOT = Path(__file__).resolve().parents[2]
ENVIRONMENTS = ("dev", "staging", "prod")
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
STACK = "urn:pulumi:prod::ai-platform::pulumi:pulumi:Stack"
MODEL_STORE = f"{STACK}$ai-platform:storage:ModelStore"
LOG_ARCHIVE = f"{STACK}$ai-platform:observability:LogArchive"
TAGS = {"team": "platform", "environment": "prod", "cost-center": "ml-platform-prod",
        "data-classification": "confidential", "managed-by": "pulumi"}

LOG_GROUP_PROPS = {"name": "/aws/eks/aip-prod/cluster", "retentionInDays": 365.0, "tags": TAGS,
                   "kmsKeyId": "arn:aws:kms:us-east-1:123456789012:key/709115e7"}
ACCESS_LOGS = {"bucket": "aip-prod-model-store-access-logs-beff634", "rules": [
    {"id": "expire-access-logs", "status": "Enabled", "filter": {}, "expiration": {"days": 365.0},
     "noncurrentVersionExpiration": {"noncurrentDays": 30.0}},
    {"id": "remove-expired-delete-markers", "status": "Enabled", "filter": {},
     "expiration": {"expiredObjectDeleteMarker": True}}]}
MODELS = {"bucket": "aip-prod-model-store-models-4dc85da", "rules": [
    {"id": "expire-noncurrent-versions", "status": "Enabled", "filter": {},
     "noncurrentVersionExpiration": {"noncurrentDays": 90.0}, "abortIncompleteMultipartUpload": {
         "daysAfterInitiation": 7.0}}]}
SNAPSHOTS = {"bucket": "aip-prod-log-archive-snapshots-f7cdb3f", "rules": [
    {"id": "expire-noncurrent-versions", "status": "Enabled", "filter": {},
     "noncurrentVersionExpiration": {"noncurrentDays": 30.0}, "expiration": {"expiredObjectDeleteMarker": True},
     "abortIncompleteMultipartUpload": {"daysAfterInitiation": 7.0}}]}

# (type, logical name, URN of its parent component or the stack): where each baseline lives in the graph.
WHERE = {
    "log-group": (LOG_GROUP, "aip-prod-cluster-control-plane-logs", STACK),
    "access-logs": (LIFECYCLE, "aip-prod-model-store-access-logs", MODEL_STORE),
    "archive-access-logs": (LIFECYCLE, "aip-prod-log-archive-access-logs", LOG_ARCHIVE),
    "models": (LIFECYCLE, "aip-prod-model-store-models", MODEL_STORE),
    "snapshots": (LIFECYCLE, "aip-prod-log-archive-snapshots", LOG_ARCHIVE),
    "setup-bodies": (CONFIG_MAP, "aip-prod-logging-setup-bodies", f"{STACK}$ai-platform:observability:LoggingStack"),
}


def setup_config_map(**slm: Any) -> dict[str, Any]:
    """The ConfigMap of the log setup Job as the platform writes it, its SLM body changed by ``slm``."""
    data = setup_bodies(bucket="aip-prod-log-archive-snapshots-f7cdb3f", retention_days=365,
                        schedule="0 30 1 * * ?", snapshot_retention_days=365)
    body = json.loads(data["slm-policy.json"])
    for key, value in slm.items():
        if value is DELETE:
            body.pop(key, None)
        else:
            body[key] = value
    data["slm-policy.json"] = json.dumps(body)
    return {"apiVersion": "v1", "kind": "ConfigMap", "immutable": True, "data": data,
            "metadata": {"name": "aip-log-setup-19a7112dcc", "namespace": "logging"}}


SETUP = setup_config_map()
BASELINES: dict[str, dict[str, Any]] = {"log-group": LOG_GROUP_PROPS, "access-logs": ACCESS_LOGS,
                                        "archive-access-logs": ACCESS_LOGS, "models": MODELS,
                                        "snapshots": SNAPSHOTS, "setup-bodies": SETUP}


def pack(environment: str, policy: str) -> dict[str, Any]:
    """The settings of ``policy`` in policies/config/<environment>.json."""
    entry = json.loads((ROOT / "policies" / "config" / f"{environment}.json").read_text())[policy]
    return {k: v for k, v in entry.items() if k != "enforcementLevel"}


def check(policy: ResourceValidationPolicy, where: str, props: Mapping[str, Any],
          config: Mapping[str, Any] | None = None, name: str | None = None) -> list[str]:
    """The messages ``policy`` reports for one resource at its place in the graph (type, name, parent)."""
    resource_type, default_name, parent = WHERE[where]
    name = name or default_name
    urn = f"{parent}${resource_type}::{name}"
    messages: list[str] = []
    args = ResourceValidationArgs(resource_type, engine_props(props), urn, name, options(), None, dict(config or {}))
    policy.validate(args, lambda message, urn=None: messages.append(message))
    return messages


LG = "CloudWatch log group 'aip-prod-cluster-control-plane-logs'"
AL = "Log bucket lifecycle 'aip-prod-model-store-access-logs'"
LIFE = "S3 lifecycle 'aip-prod-model-store-models'"
SLM = "Snapshot lifecycle policy 'slm-policy.json' of ConfigMap 'aip-prod-logging-setup-bodies'"
KEEP_LOGS = "logs must be kept at least 365 days (minRetentionDays)."
RECOVERABLE = "they must stay recoverable at least 30 days (minNoncurrentDays)."

CASES: list[tuple[ResourceValidationPolicy, str, str, Any, list[str]]] = [
    # policy, baseline, mutated path, value, messages (with the policy's default minimum, prod's)
    (aws_cloudwatch_loggroup_retention, "log-group", "retentionInDays", 7.0,
     [f"{LG} keeps events 7 days; this environment requires at least 365 days (minRetentionDays)."]),
    (aws_cloudwatch_loggroup_retention, "log-group", "retentionInDays", 180.0,
     [f"{LG} keeps events 180 days; this environment requires at least 365 days (minRetentionDays)."]),
    (aws_cloudwatch_loggroup_retention, "log-group", "retentionInDays", "a week",
     [f"{LG} has an unreadable retentionInDays 'a week'."]),
    (aws_cloudwatch_loggroup_retention, "log-group", "logGroupClass", "DELIVERY",
     [f"{LG} is of log class DELIVERY, which keeps events 1 day; this environment requires at least 365 days "
      "(minRetentionDays)."]),
    (aws_s3_bucket_log_retention, "access-logs", "rules.0.expiration.days", 7.0,
     [f"{AL} rule expire-access-logs expires objects after 7 days; {KEEP_LOGS}"]),
    (aws_s3_bucket_log_retention, "access-logs", "rules.0.expiration", [{"days": 30.0}],
     [f"{AL} rule expire-access-logs expires objects after 30 days; {KEEP_LOGS}"]),
    (aws_s3_bucket_log_retention, "access-logs", "rules.0.expiration", {"date": "2027-01-01"},
     [f"{AL} rule expire-access-logs expires objects on 2027-01-01 whatever their age; {KEEP_LOGS}"]),
    (aws_s3_bucket_log_retention, "access-logs", "rules.1",
     {"id": "tidy", "status": "Enabled", "filter": {"prefix": "models/"}, "expiration": {"days": 1.0}},
     [f"{AL} rule tidy expires objects after 1 days; {KEEP_LOGS}"]),
    (aws_s3_bucket_log_retention, "snapshots", "rules.0.expiration", {"days": 90.0},
     ["Log bucket lifecycle 'aip-prod-log-archive-snapshots' rule expire-noncurrent-versions expires objects "
      f"after 90 days; {KEEP_LOGS}"]),
    (aws_s3_bucket_log_retention, "archive-access-logs", "rules.0.expiration.days", 7.0,
     ["Log bucket lifecycle 'aip-prod-log-archive-access-logs' rule expire-access-logs expires objects after "
      f"7 days; {KEEP_LOGS}"]),
    (aws_s3_bucket_noncurrent_version_retention, "models", "rules.0.noncurrentVersionExpiration.noncurrentDays", 1.0,
     [f"{LIFE} rule expire-noncurrent-versions deletes replaced or deleted object versions after 1 days; "
      f"{RECOVERABLE}"]),
    (aws_s3_bucket_noncurrent_version_retention, "models", "rules.0.noncurrentVersionExpiration",
     [{"noncurrentDays": 7.0, "newerNoncurrentVersions": "3"}],
     [f"{LIFE} rule expire-noncurrent-versions deletes replaced or deleted object versions after 7 days; "
      f"{RECOVERABLE}"]),
    (aws_s3_bucket_noncurrent_version_retention, "access-logs", "rules.0.noncurrentVersionExpiration.noncurrentDays",
     2.0, ["S3 lifecycle 'aip-prod-model-store-access-logs' rule expire-access-logs deletes replaced or deleted "
           f"object versions after 2 days; {RECOVERABLE}"]),
    (aws_s3_bucket_noncurrent_version_retention, "snapshots", "rules.0.noncurrentVersionExpiration.noncurrentDays",
     14.0, ["S3 lifecycle 'aip-prod-log-archive-snapshots' rule expire-noncurrent-versions deletes replaced or "
            f"deleted object versions after 14 days; {RECOVERABLE}"]),
    (aws_s3_bucket_log_retention, "access-logs", "rules.0.expiration.days", "a year",
     [f"{AL} rule expire-access-logs has an unreadable expiration days 'a year' (S3 takes a whole number of days, "
      f"at least 1); {KEEP_LOGS}"]),
    (aws_s3_bucket_log_retention, "access-logs", "rules.0.expiration.days", -400.0,
     [f"{AL} rule expire-access-logs has an unreadable expiration days '-400.0' (S3 takes a whole number of days, "
      f"at least 1); {KEEP_LOGS}"]),
    (aws_s3_bucket_noncurrent_version_retention, "models", "rules.0.noncurrentVersionExpiration.noncurrentDays",
     float("nan"), [f"{LIFE} rule expire-noncurrent-versions has an unreadable noncurrent days 'NaN' (S3 takes a "
                    f"whole number of days, at least 1); {RECOVERABLE}"]),
]
SLM_CASES: list[tuple[dict[str, Any], list[str]]] = [
    ({"retention": {"expire_after": "7d", "min_count": 1}},
     [f"{SLM} expires snapshots after 7d; this environment requires at least 365 days (minRetentionDays)."]),
    ({"retention": {"expire_after": "720h", "min_count": 1}},
     [f"{SLM} expires snapshots after 720h; this environment requires at least 365 days (minRetentionDays)."]),
    ({"retention": {"expire_after": "1y"}}, [f'{SLM} has an unreadable retention.expire_after "1y".']),
    ({"retention": {"expire_after": "400d", "max_count": 30}},
     [f"{SLM} keeps at most 30 snapshots (retention.max_count), fewer than one a day for the 365 days this "
      "environment requires (minRetentionDays)."]),
    ({"retention": "30d"}, [f'{SLM} has an unreadable retention "30d".']),
]


@pytest.mark.parametrize("where", sorted(BASELINES))
@pytest.mark.parametrize("policy", [aws_cloudwatch_loggroup_retention, aws_s3_bucket_log_retention,
                                    aws_s3_bucket_noncurrent_version_retention, kubernetes_elastic_snapshot_retention],
                         ids=lambda p: p.name)
def test_baselines_pass_with_every_environment_minimum(policy, where) -> None:
    for environment in ENVIRONMENTS:
        assert check(policy, where, BASELINES[where], pack(environment, policy.name)) == []


@pytest.mark.parametrize(("policy", "where", "path", "value", "messages"), CASES,
                         ids=[f"{c[0].name}:{c[1]}:{c[2]}={c[3]}" for c in CASES])
def test_each_violation_is_reported(policy, where, path, value, messages) -> None:
    assert check(policy, where, mutate(BASELINES[where], path, value)) == messages


@pytest.mark.parametrize(("slm", "messages"), SLM_CASES, ids=[json.dumps(c[0]) for c in SLM_CASES])
def test_each_snapshot_retention_violation_is_reported(slm, messages) -> None:
    assert check(kubernetes_elastic_snapshot_retention, "setup-bodies", setup_config_map(**slm)) == messages


def test_what_keeps_logs_forever_passes() -> None:
    never = [mutate(LOG_GROUP_PROPS, "retentionInDays", DELETE), mutate(LOG_GROUP_PROPS, "retentionInDays", 0.0)]
    assert [check(aws_cloudwatch_loggroup_retention, "log-group", props) for props in never] == [[], []]
    assert check(kubernetes_elastic_snapshot_retention, "setup-bodies", setup_config_map(retention=DELETE)) == []
    assert check(aws_s3_bucket_log_retention, "access-logs", mutate(ACCESS_LOGS, "rules", [])) == []


def test_disabled_rules_and_other_config_maps_are_not_judged_and_rules_without_status_are() -> None:
    disabled = mutate(mutate(ACCESS_LOGS, "rules.0.status", "Disabled"), "rules.0.expiration.days", 1.0)
    assert check(aws_s3_bucket_log_retention, "access-logs", disabled) == []
    unstated = mutate(mutate(MODELS, "rules.0.status", DELETE), "rules.0.noncurrentVersionExpiration.noncurrentDays",
                      1.0)
    assert len(check(aws_s3_bucket_noncurrent_version_retention, "models", unstated)) == 1
    other = {"data": {"app.json": json.dumps({"retention": {"expire_after": "1d"}}), "text": "not json"}}
    assert check(kubernetes_elastic_snapshot_retention, "setup-bodies", other) == []


def test_model_artifacts_are_not_logs() -> None:
    # Current model versions expiring is not a log-retention question; their recovery window is checked.
    expiring = mutate(MODELS, "rules.0.expiration", {"days": 7.0})
    assert check(aws_s3_bucket_log_retention, "models", expiring) == []


def test_log_buckets_are_told_by_name_component_or_rule_id() -> None:
    short = mutate(MODELS, "rules.0.expiration", {"days": 7.0})
    message = "rule expire-noncurrent-versions expires objects after 7 days; " + KEEP_LOGS
    assert check(aws_s3_bucket_log_retention, "snapshots", short, name="archive") == [
        f"Log bucket lifecycle 'archive' {message}"]
    assert check(aws_s3_bucket_log_retention, "models", short, name="audit-trail") == [
        f"Log bucket lifecycle 'audit-trail' {message}"]
    renamed = mutate(ACCESS_LOGS, "rules.0.expiration.days", 7.0)
    assert check(aws_s3_bucket_log_retention, "models", renamed, name="store-records") == [
        "Log bucket lifecycle 'store-records' rule expire-access-logs expires objects after 7 days; " + KEEP_LOGS]


@pytest.mark.parametrize("bucket_type", ["aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2"])
def test_inline_lifecycle_rules_of_a_bucket_are_judged_too(bucket_type: str) -> None:
    plural = bucket_type.endswith("V2")
    rule = {"id": "expire-access-logs", "enabled": True,
            ("expirations" if plural else "expiration"): [{"days": 7.0}] if plural else {"days": 7.0},
            ("noncurrentVersionExpirations" if plural else "noncurrentVersionExpiration"):
                [{"days": 1.0}] if plural else {"days": 1.0}}
    props = {"tags": TAGS, "lifecycleRules": [rule, {**rule, "id": "off", "enabled": False}]}
    name = "aip-prod-model-store-access-logs"
    urn = f"{MODEL_STORE}${bucket_type}::{name}"
    found: list[str] = []
    for policy in (aws_s3_bucket_log_retention, aws_s3_bucket_noncurrent_version_retention):
        args = ResourceValidationArgs(bucket_type, engine_props(props), urn, name, options(), None, {})
        policy.validate(args, lambda message, urn=None: found.append(message))
    assert found == [
        f"{AL} rule expire-access-logs expires objects after 7 days; {KEEP_LOGS}",
        f"S3 lifecycle '{name}' rule expire-access-logs deletes replaced or deleted object versions after 1 days; "
        f"{RECOVERABLE}"]


@pytest.mark.parametrize(("policy", "where", "path", "value", "key"), [
    (aws_cloudwatch_loggroup_retention, "log-group", "retentionInDays", None, "minRetentionDays"),
    (aws_s3_bucket_log_retention, "access-logs", "rules.0.expiration.days", None, "minRetentionDays"),
    (aws_s3_bucket_noncurrent_version_retention, "models", "rules.0.noncurrentVersionExpiration.noncurrentDays",
     None, "minNoncurrentDays"),
], ids=lambda v: getattr(v, "name", None))
def test_each_environment_has_its_own_minimum(policy, where, path, value, key) -> None:
    for environment in ENVIRONMENTS:
        minimum = pack(environment, policy.name)[key]
        config = pack(environment, policy.name)
        assert check(policy, where, mutate(BASELINES[where], path, float(minimum)), config) == []
        assert len(check(policy, where, mutate(BASELINES[where], path, float(minimum - 1)), config)) == 1


def test_each_environment_has_its_own_snapshot_minimum() -> None:
    for environment in ENVIRONMENTS:
        minimum = pack(environment, kubernetes_elastic_snapshot_retention.name)["minRetentionDays"]
        config = pack(environment, kubernetes_elastic_snapshot_retention.name)
        at, below = ({"retention": {"expire_after": f"{days}d"}} for days in (minimum, minimum - 1))
        assert check(kubernetes_elastic_snapshot_retention, "setup-bodies", setup_config_map(**at), config) == []
        assert len(check(kubernetes_elastic_snapshot_retention, "setup-bodies", setup_config_map(**below),
                         config)) == 1


def test_the_minimums_grow_from_dev_to_prod() -> None:
    for policy, key in ((aws_cloudwatch_loggroup_retention, "minRetentionDays"),
                        (aws_s3_bucket_log_retention, "minRetentionDays"),
                        (kubernetes_elastic_snapshot_retention, "minRetentionDays"),
                        (aws_s3_bucket_noncurrent_version_retention, "minNoncurrentDays")):
        dev, staging, prod = (pack(e, policy.name)[key] for e in ENVIRONMENTS)
        assert dev <= staging <= prod, policy.name
        # Without pack config a policy asks what prod asks.
        assert policy.config_schema.properties[key]["default"] == prod, policy.name


# Stack config key -> (policy, setting) that enforces its minimum in the pack.
CONFIG_MINIMUMS = {
    "log_retention_days": (aws_cloudwatch_loggroup_retention, "minRetentionDays"),
    "snapshot_retention_days": (kubernetes_elastic_snapshot_retention, "minRetentionDays"),
    "access_log_expiration_days": (aws_s3_bucket_log_retention, "minRetentionDays"),
    "noncurrent_version_expiration_days": (aws_s3_bucket_noncurrent_version_retention, "minNoncurrentDays"),
}


@pytest.mark.parametrize("field", sorted(CONFIG_MINIMUMS))
def test_the_stack_configs_prod_minimums_are_the_packs(field: str) -> None:
    policy, key = CONFIG_MINIMUMS[field]
    assert PROD_MINIMUMS[field] == pack("prod", policy.name)[key]


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_defaults_and_fixed_windows_meet_every_environments_minimum(environment: str) -> None:
    logs, kept, recoverable = (pack(environment, p.name)[k] for p, k in (
        (aws_cloudwatch_loggroup_retention, "minRetentionDays"), (aws_s3_bucket_log_retention, "minRetentionDays"),
        (aws_s3_bucket_noncurrent_version_retention, "minNoncurrentDays")))
    snapshots = pack(environment, kubernetes_elastic_snapshot_retention.name)["minRetentionDays"]
    assert ClusterConfig().log_retention_days >= logs
    assert ENVIRONMENT_DEFAULTS[environment]["logs"]["snapshotRetentionDays"] >= snapshots
    store = ModelStoreConfig()
    assert store.access_log_expiration_days >= kept and store.noncurrent_version_expiration_days >= recoverable
    # The windows the code fixes: the log archive's access logs and noncurrent snapshot files, every access log's
    # noncurrent versions.
    assert kept <= log_archive.ACCESS_LOG_EXPIRATION_DAYS
    assert min(log_archive.NONCURRENT_VERSION_DAYS, s3_bucket.ACCESS_LOG_NONCURRENT_DAYS) >= recoverable


def test_prod_stack_config_below_the_minimums_is_refused_key_by_key() -> None:
    values = platform(environment="prod", network={"natGateways": "perAz"},
                      cluster={"privateAccessCidrs": ["10.64.250.0/24"], "logRetentionDays": 7},
                      modelStore={"accessLogExpirationDays": 7, "noncurrentVersionExpirationDays": 1},
                      observability={"logs": {"snapshotRetentionDays": 7}})
    assert problems(values, "prod") == [
        "ai-platform:cluster.logRetentionDays = 7: must be at least 365 in prod",
        "ai-platform:modelStore.noncurrentVersionExpirationDays = 1: must be at least 30 in prod",
        "ai-platform:modelStore.accessLogExpirationDays = 7: must be at least 365 in prod",
        "ai-platform:observability.logs.snapshotRetentionDays = 7: must be at least 365 in prod",
    ]


@pytest.mark.integration
def test_the_prod_graph_is_where_the_policies_look(preview) -> None:
    """Every log group, lifecycle and snapshot policy of the prod preview is judged: a minimum above what it keeps
    flags each one."""
    from tests.policies import test_shipped_stacks as shipped

    result = preview("prod")
    found: dict[str, list[str]] = {}
    for policy in (aws_cloudwatch_loggroup_retention, aws_s3_bucket_log_retention,
                   aws_s3_bucket_noncurrent_version_retention, kubernetes_elastic_snapshot_retention):
        for record in (r for r in result.resources if r.custom):
            args = ResourceValidationArgs(record.type, shipped.decoded(record, "input"), record.urn, record.name,
                                          shipped.options_of(record), None,
                                          {"minRetentionDays": 3000, "minNoncurrentDays": 3000})
            policy.validate(args, lambda m, urn=None, name=policy.name: found.setdefault(name, []).append(m))
    flagged = {name: sorted(m.split("'")[1] for m in messages) for name, messages in found.items()}
    assert flagged == {
        "aws-cloudwatch-loggroup-retention": ["aip-prod-cluster-control-plane-logs", "aip-prod-network-flow-logs"],
        # The replicas in the recovery region keep what their sources keep, and are judged alike.
        "aws-s3-bucket-log-retention": ["aip-prod-log-archive-access-logs", "aip-prod-model-store-access-logs",
                                        "aip-prod-replication-log-archive-access-logs",
                                        "aip-prod-replication-models-access-logs"],
        "aws-s3-bucket-noncurrent-version-retention": [
            "aip-prod-log-archive-access-logs", "aip-prod-log-archive-snapshots", "aip-prod-model-store-access-logs",
            "aip-prod-model-store-models", "aip-prod-replication-log-archive-access-logs",
            "aip-prod-replication-log-archive-replica", "aip-prod-replication-models-access-logs",
            "aip-prod-replication-models-replica"],
        "kubernetes-elastic-snapshot-retention": ["slm-policy.json"],
    }


@pytest.mark.integration
def test_short_windows_in_staging_fail_the_gate(scratch_project: Path) -> None:
    path = scratch_project / "stacks" / "Pulumi.staging.yaml"
    data = yaml.safe_load(path.read_text())
    config = data["config"]
    config["ai-platform:cluster"]["logRetentionDays"] = 7
    config["ai-platform:modelStore"].update({"accessLogExpirationDays": 7, "noncurrentVersionExpirationDays": 1})
    config["ai-platform:observability"] = {"logs": {"snapshotRetentionDays": 7}}
    path.write_text(yaml.safe_dump(data))
    run = aip("preview", "--stack", "staging", "--format", "json", "--no-package", "--no-deploy-checks",
              cwd=scratch_project)
    assert run.returncode == 1, run.stderr
    blocking: dict[str, int] = {}
    for violation in json.loads(run.stdout)["policies"]["violations"]:
        if violation["enforcement"] == "mandatory":
            blocking[violation["policy"]] = blocking.get(violation["policy"], 0) + 1
    assert blocking == {"aws-cloudwatch-loggroup-retention": 2, "aws-s3-bucket-log-retention": 1,
                        "aws-s3-bucket-noncurrent-version-retention": 1, "kubernetes-elastic-snapshot-retention": 1}
