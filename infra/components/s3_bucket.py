"""What every platform bucket shares: private, owner-enforced, versioned, encrypted by default, TLS only, and
its access logged to a bucket of its own.

https://docs.aws.amazon.com/AmazonS3/latest/userguide/security-best-practices.html
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.iam_policies import access_log_bucket_policy, tls_only_bucket_policy

# S3 server access logs can only be delivered to a bucket encrypted with SSE-S3.
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/enable-server-access-logging.html
SSE_S3: dict[str, Any] = {"sse_algorithm": "AES256"}
ACCESS_LOG_NONCURRENT_DAYS = 30


def sse_kms(key_arn: pulumi.Input[str]) -> dict[str, Any]:
    """Default encryption with a customer key."""
    return {"sse_algorithm": "aws:kms", "kms_master_key_id": key_arn}


# A delete marker whose object has no version left (an expired object delete marker) is kept until a rule removes
# it, and every listing of the bucket still walks it.
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/lifecycle-configuration-examples.html#lifecycle-config-conceptual-ex7
EXPIRED_DELETE_MARKERS: dict[str, Any] = {"expired_object_delete_marker": True}


def access_log_rules(expiration_days: int) -> list[dict[str, Any]]:
    """Access logs expire after ``expiration_days``; overwritten ones soon after; then their delete markers.

    S3 refuses ``expired_object_delete_marker`` beside ``days`` in one expiration, so it is a rule of its own.
    https://docs.aws.amazon.com/AmazonS3/latest/API/API_LifecycleExpiration.html
    """
    return [{"id": "expire-access-logs", "status": "Enabled", "filter": {},
             "expiration": {"days": expiration_days},
             "noncurrent_version_expiration": {"noncurrent_days": ACCESS_LOG_NONCURRENT_DAYS}},
            {"id": "remove-expired-delete-markers", "status": "Enabled", "filter": {},
             "expiration": EXPIRED_DELETE_MARKERS}]


def harden_bucket(name: str, bucket: aws.s3.Bucket, *, sse: dict[str, Any], rules: list[dict[str, Any]],
                  opts: pulumi.ResourceOptions) -> None:
    """Ownership enforced, public access blocked, versioned, encrypted by default, with lifecycle rules.

    The settings are resources of their own (pulumi-aws v7); each is named ``name`` and takes ``opts``,
    so they share the bucket's parent and deletion protection.
    """
    aws.s3.BucketOwnershipControls(name, bucket=bucket.id, rule={"object_ownership": "BucketOwnerEnforced"},
                                   opts=opts)
    aws.s3.BucketPublicAccessBlock(name, bucket=bucket.id, block_public_acls=True, block_public_policy=True,
                                   ignore_public_acls=True, restrict_public_buckets=True, opts=opts)
    aws.s3.BucketVersioning(name, bucket=bucket.id, versioning_configuration={"status": "Enabled"}, opts=opts)
    aws.s3.BucketServerSideEncryptionConfiguration(
        name, bucket=bucket.id, opts=opts,
        rules=[{"apply_server_side_encryption_by_default": sse, "bucket_key_enabled": True}])
    aws.s3.BucketLifecycleConfiguration(name, bucket=bucket.id, rules=rules, opts=opts)


@dataclass(frozen=True)
class LoggedBucket:
    """A private data bucket and the bucket that receives its server access logs."""

    bucket: aws.s3.Bucket
    log_bucket: aws.s3.Bucket


def logged_private_bucket(name: str, *, purpose: str, kms_key_arn: pulumi.Input[str], rules: list[dict[str, Any]],
                          log_expiration_days: int, account_id: pulumi.Input[str],
                          opts: pulumi.ResourceOptions) -> LoggedBucket:
    """``{name}-{purpose}``, SSE-KMS with ``kms_key_arn``, logging into ``{name}-access-logs`` under ``{purpose}/``.

    Both buckets get :func:`harden_bucket` and a TLS-only policy; the log bucket's policy lets S3's
    logging service write the data bucket's logs and nothing else. ``opts`` (parent and deletion
    protection) applies to every resource, so whatever protects the data outlives a destroy with it.
    """
    logs = aws.s3.Bucket(f"{name}-access-logs", force_destroy=False, opts=opts)
    harden_bucket(f"{name}-access-logs", logs, sse=SSE_S3, rules=access_log_rules(log_expiration_days), opts=opts)
    data = aws.s3.Bucket(f"{name}-{purpose}", force_destroy=False, opts=opts)
    harden_bucket(f"{name}-{purpose}", data, sse=sse_kms(kms_key_arn), rules=rules, opts=opts)
    aws.s3.BucketPolicy(f"{name}-{purpose}", bucket=data.id, opts=opts,
                        policy=data.arn.apply(lambda arn: json.dumps(tls_only_bucket_policy(arn))))
    aws.s3.BucketPolicy(f"{name}-access-logs", bucket=logs.id, opts=opts,
                        policy=pulumi.Output.all(logs.arn, data.arn, account_id).apply(
                            lambda v: json.dumps(access_log_bucket_policy(v[0], v[1], v[2]))))
    aws.s3.BucketLogging(f"{name}-{purpose}", bucket=data.id, target_bucket=logs.id, target_prefix=f"{purpose}/",
                         opts=opts)
    return LoggedBucket(bucket=data, log_bucket=logs)
