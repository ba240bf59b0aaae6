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
                  opts: pulumi.ResourceOptions, region: str | None = None) -> aws.s3.BucketVersioning:
    """Ownership enforced, public access blocked, versioned, encrypted by default, with lifecycle rules.

    The settings are resources of their own (pulumi-aws v7); each is named ``name`` and takes ``opts``,
    so they share the bucket's parent and deletion protection, and ``region`` (the bucket's, when it is not
    the stack's). Returns the versioning, which replication must wait for.
    """
    aws.s3.BucketOwnershipControls(name, bucket=bucket.id, rule={"object_ownership": "BucketOwnerEnforced"},
                                   region=region, opts=opts)
    aws.s3.BucketPublicAccessBlock(name, bucket=bucket.id, block_public_acls=True, block_public_policy=True,
                                   ignore_public_acls=True, restrict_public_buckets=True, region=region, opts=opts)
    versioning = aws.s3.BucketVersioning(name, bucket=bucket.id, versioning_configuration={"status": "Enabled"},
                                         region=region, opts=opts)
    aws.s3.BucketServerSideEncryptionConfiguration(
        name, bucket=bucket.id, region=region, opts=opts,
        rules=[{"apply_server_side_encryption_by_default": sse, "bucket_key_enabled": True}])
    aws.s3.BucketLifecycleConfiguration(name, bucket=bucket.id, rules=rules, region=region, opts=opts)
    return versioning


@dataclass(frozen=True)
class ExistingBucket:
    """A data bucket another stack owns and protects (a replica a recovery stack serves from), and its log bucket."""

    bucket: pulumi.Input[str]
    arn: pulumi.Input[str]
    log_bucket: pulumi.Input[str]


@dataclass(frozen=True)
class LoggedBucket:
    """A private data bucket and the bucket that receives its server access logs."""

    bucket: aws.s3.Bucket
    log_bucket: aws.s3.Bucket
    versioning: aws.s3.BucketVersioning


def logged_private_bucket(name: str, *, purpose: str, kms_key_arn: pulumi.Input[str], rules: list[dict[str, Any]],
                          log_expiration_days: int, account_id: pulumi.Input[str],
                          opts: pulumi.ResourceOptions, region: str | None = None) -> LoggedBucket:
    """``{name}-{purpose}``, SSE-KMS with ``kms_key_arn``, logging into ``{name}-access-logs`` under ``{purpose}/``.

    Both buckets get :func:`harden_bucket` and a TLS-only policy; the log bucket's policy lets S3's
    logging service write the data bucket's logs and nothing else. ``opts`` (parent and deletion
    protection) applies to every resource, so whatever protects the data outlives a destroy with it.
    ``region`` puts every resource in another region than the stack's (a log bucket must share its
    source's region).
    """
    logs = aws.s3.Bucket(f"{name}-access-logs", force_destroy=False, region=region, opts=opts)
    harden_bucket(f"{name}-access-logs", logs, sse=SSE_S3, rules=access_log_rules(log_expiration_days), opts=opts,
                  region=region)
    data = aws.s3.Bucket(f"{name}-{purpose}", force_destroy=False, region=region, opts=opts)
    versioning = harden_bucket(f"{name}-{purpose}", data, sse=sse_kms(kms_key_arn), rules=rules, opts=opts,
                               region=region)
    aws.s3.BucketPolicy(f"{name}-{purpose}", bucket=data.id, region=region, opts=opts,
                        policy=data.arn.apply(lambda arn: json.dumps(tls_only_bucket_policy(arn))))
    aws.s3.BucketPolicy(f"{name}-access-logs", bucket=logs.id, region=region, opts=opts,
                        policy=pulumi.Output.all(logs.arn, data.arn, account_id).apply(
                            lambda v: json.dumps(access_log_bucket_policy(v[0], v[1], v[2]))))
    aws.s3.BucketLogging(f"{name}-{purpose}", bucket=data.id, target_bucket=logs.id, target_prefix=f"{purpose}/",
                         region=region, opts=opts)
    return LoggedBucket(bucket=data, log_bucket=logs, versioning=versioning)


@dataclass(frozen=True)
class DataBucket:
    """What a component serves from: the data bucket's name and ARN, its log bucket's name, and the versioning
    that replication waits for (None for a bucket another stack owns)."""

    bucket: pulumi.Output[str]
    arn: pulumi.Output[str]
    log_bucket: pulumi.Output[str]
    versioning: aws.s3.BucketVersioning | None


def data_bucket(name: str, *, existing: ExistingBucket | None, purpose: str, kms_key_arn: pulumi.Input[str],
                rules: list[dict[str, Any]], log_expiration_days: int, account_id: pulumi.Input[str],
                opts: pulumi.ResourceOptions) -> DataBucket:
    """A new :func:`logged_private_bucket`, or ``existing``, which another stack owns, hardens and protects."""
    if existing is not None:
        return DataBucket(pulumi.Output.from_input(existing.bucket), pulumi.Output.from_input(existing.arn),
                          pulumi.Output.from_input(existing.log_bucket), None)
    stored = logged_private_bucket(name, purpose=purpose, kms_key_arn=kms_key_arn, rules=rules,
                                   log_expiration_days=log_expiration_days, account_id=account_id, opts=opts)
    return DataBucket(stored.bucket.bucket, stored.bucket.arn, stored.log_bucket.bucket, stored.versioning)
