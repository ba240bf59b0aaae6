"""The model store: an S3 bucket for model artifacts, and a separate bucket for its access logs."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.aws_context import AwsContext
from infra.components.s3_bucket import ExistingBucket, data_bucket
from infra.config import ModelStoreConfig
from infra.iam_policies import team_boundary_policy


def deletion_options(mode: str) -> pulumi.ResourceOptions:
    """`protect` refuses deletes in Pulumi; `retain` deletes from state but keeps the bucket in AWS."""
    return pulumi.ResourceOptions(protect=mode == "protect", retain_on_delete=mode in {"protect", "retain"})


def lifecycle_rules(cfg: ModelStoreConfig) -> list[dict]:
    """Replaced model versions expire; unfinished multipart uploads are cleaned up."""
    return [{
        "id": "expire-noncurrent-versions",
        "status": "Enabled",
        "filter": {},
        "noncurrent_version_expiration": {"noncurrent_days": cfg.noncurrent_version_expiration_days},
        "abort_incomplete_multipart_upload": {"days_after_initiation": 7},
    }]


@dataclass(frozen=True)
class ModelStoreArgs:
    """Args of :class:`ModelStore`.

    Attributes:
        config: Model store section of the stack config.
        kms_key_arn: Customer key for SSE-KMS of model artifacts.
        aws: Account, partition and region.
        existing: The bucket to use instead of creating one: in a recovery stack, the replica of the restored
            stack's model store (encrypted with ``kms_key_arn``, the replica key).
    """

    config: ModelStoreConfig
    kms_key_arn: pulumi.Input[str]
    aws: AwsContext
    existing: ExistingBucket | None = None


class ModelStore(pulumi.ComponentResource):
    """Versioned, SSE-KMS encrypted, private, TLS-only model bucket with access logging.

    https://docs.aws.amazon.com/AmazonS3/latest/userguide/security-best-practices.html
    """

    bucket: pulumi.Output[str]
    bucket_arn: pulumi.Output[str]
    log_bucket: pulumi.Output[str]
    team_boundary_arn: pulumi.Output[str]
    # The bucket's versioning, which replication waits for; None for an existing bucket.
    versioning: aws.s3.BucketVersioning | None

    def __init__(self, name: str, args: ModelStoreArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-platform:storage:ModelStore", name, None, opts)
        cfg = args.config
        # Everything that protects the buckets outlives a destroy with them, not only the buckets.
        keep = pulumi.ResourceOptions.merge(pulumi.ResourceOptions(parent=self),
                                            deletion_options(cfg.deletion_protection))
        stored = data_bucket(name, existing=args.existing, purpose="models", kms_key_arn=args.kms_key_arn,
                             rules=lifecycle_rules(cfg), log_expiration_days=cfg.access_log_expiration_days,
                             account_id=args.aws.account_id, opts=keep)
        self.bucket, self.bucket_arn = stored.bucket, stored.arn
        self.log_bucket, self.versioning = stored.log_bucket, stored.versioning
        boundary = aws.iam.Policy(
            f"{name}-team-boundary", description="Permissions boundary of every team's serving role",
            policy=pulumi.Output.all(self.bucket_arn, args.kms_key_arn).apply(
                lambda v: json.dumps(team_boundary_policy(v[0], v[1], args.aws.region))),
            opts=pulumi.ResourceOptions(parent=self))
        self.team_boundary_arn = boundary.arn
        self.register_outputs({"bucket": self.bucket, "bucket_arn": self.bucket_arn, "log_bucket": self.log_bucket,
                               "team_boundary_arn": self.team_boundary_arn})
