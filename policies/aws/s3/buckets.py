"""Pairing ``aws:s3/bucket:Bucket`` with its separate settings resources (pulumi-aws v7).

In v7 encryption, versioning, public access block, policy and logging are resources of their own that
name the bucket by its ``bucket`` prop. Stack policies see outputs, where a Bucket has both ``bucket``
(its name) and ``id`` (the same name); a settings resource is matched to a bucket on either.
"""

from __future__ import annotations

from collections.abc import Iterable

from pulumi_policy import PolicyResource

from policies.props import get

BUCKET = "aws:s3/bucket:Bucket"
SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
POLICY = "aws:s3/bucketPolicy:BucketPolicy"
LOGGING = "aws:s3/bucketLogging:BucketLogging"


def bucket_keys(bucket: PolicyResource) -> set[str]:
    """The names a settings resource may use to refer to ``bucket``."""
    return {str(value) for value in (get(bucket.props, "bucket"), get(bucket.props, "id")) if value}


def buckets(resources: Iterable[PolicyResource]) -> list[PolicyResource]:
    return [r for r in resources if r.resource_type == BUCKET]


def settings_for(bucket: PolicyResource, resources: Iterable[PolicyResource], type_token: str) -> list[PolicyResource]:
    """The ``type_token`` resources that configure ``bucket``."""
    keys = bucket_keys(bucket)
    return [r for r in resources if r.resource_type == type_token and str(get(r.props, "bucket", default="")) in keys]


def log_target_names(resources: Iterable[PolicyResource]) -> set[str]:
    """Buckets that receive server access logs (the ``targetBucket`` of some BucketLogging)."""
    return {str(get(r.props, "targetBucket")) for r in resources
            if r.resource_type == LOGGING and get(r.props, "targetBucket")}


def is_log_target(bucket: PolicyResource, resources: Iterable[PolicyResource]) -> bool:
    return bool(bucket_keys(bucket) & log_target_names(resources))
