"""Lifecycle rules of the versioned log buckets: what expires, and that S3 would accept each rule."""

from __future__ import annotations

from typing import Any

import pytest

from infra.components.log_archive import archive_lifecycle_rules
from infra.components.s3_bucket import ACCESS_LOG_NONCURRENT_DAYS, access_log_rules

RULE_SETS = {"access logs": access_log_rules(365), "log archive": archive_lifecycle_rules()}


def removes_expired_delete_markers(rules: list[dict[str, Any]]) -> bool:
    return any(r["status"] == "Enabled" and r["filter"] == {} and r.get("expiration", {}).get(
        "expired_object_delete_marker") is True for r in rules)


@pytest.mark.parametrize("rules", RULE_SETS.values(), ids=RULE_SETS.keys())
def test_versioned_log_buckets_remove_expired_delete_markers(rules):
    assert removes_expired_delete_markers(rules)


@pytest.mark.parametrize("rules", RULE_SETS.values(), ids=RULE_SETS.keys())
def test_no_expiration_mixes_delete_markers_with_days_or_a_date(rules):
    # S3 rejects ExpiredObjectDeleteMarker beside Days or Date in one Expiration.
    # https://docs.aws.amazon.com/AmazonS3/latest/API/API_LifecycleExpiration.html
    for rule in rules:
        expiration = rule.get("expiration", {})
        assert not ("expired_object_delete_marker" in expiration and {"days", "date"} & set(expiration)), rule["id"]
    assert len({rule["id"] for rule in rules}) == len(rules)


def test_access_logs_still_expire_with_their_old_versions():
    expire = next(r for r in access_log_rules(90) if r["id"] == "expire-access-logs")
    assert expire["expiration"] == {"days": 90}
    assert expire["noncurrent_version_expiration"] == {"noncurrent_days": ACCESS_LOG_NONCURRENT_DAYS}


def test_registered_access_log_lifecycle_removes_expired_delete_markers(run_component):
    from infra.aws_context import AwsContext
    from infra.components.model_store import ModelStore, ModelStoreArgs
    from infra.config import ModelStoreConfig

    result = run_component(lambda: ModelStore("ms", ModelStoreArgs(
        config=ModelStoreConfig(), kms_key_arn="arn:aws:kms:us-east-1:123456789012:key/test",
        aws=AwsContext.lookup("us-east-1"))))
    lifecycle = {r.name: r.inputs["rules"] for r in
                 result.of_type("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")}
    assert {"id": "remove-expired-delete-markers", "status": "Enabled", "filter": {},
            "expiration": {"expiredObjectDeleteMarker": True}} in lifecycle["ms-access-logs"]
