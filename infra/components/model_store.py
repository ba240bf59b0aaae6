"""The model store: an S3 bucket for model artifacts, and a separate bucket for its access logs."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.aws_context import AwsContext
from infra.components.s3_bucket import logged_private_bucket
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
    """

    config: ModelStoreConfig
    kms_key_arn: pulumi.Input[str]
    aws: AwsContext


class ModelStore(pulumi.ComponentResource):
    """Versioned, SSE-KMS encrypted, private, TLS-only model bucket with access logging.

    https://docs.aws.amazon.com/AmazonS3/latest/userguide/security-best-practices.html
    """

    bucket: pulumi.Output[str]
    bucket_arn: pulumi.Output[str]
    log_bucket: pulumi.Output[str]
    team_boundary_arn: pulumi.Output[str]

    def __init__(self, name: str, args: ModelStoreArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-platform:storage:ModelStore", name, None, opts)
        cfg = args.config
        # Everything that protects the buckets outlives a destroy with them, not only the buckets.
        keep = pulumi.ResourceOptions.merge(pulumi.ResourceOptions(parent=self),
                                            deletion_options(cfg.deletion_protection))
        stored = logged_private_bucket(name, purpose="models", kms_key_arn=args.kms_key_arn, rules=lifecycle_rules(cfg),
                                       log_expiration_days=cfg.access_log_expiration_days,
                                       account_id=args.aws.account_id, opts=keep)
        models, logs = stored.bucket, stored.log_bucket
        boundary = aws.iam.Policy(
            f"{name}-team-boundary", description="Permissions boundary of every team's serving role",
            policy=pulumi.Output.all(models.arn, args.kms_key_arn).apply(
                lambda v: json.dumps(team_boundary_policy(v[0], v[1], args.aws.region))),
            opts=pulumi.ResourceOptions(parent=self))
        self.bucket = models.bucket
        self.bucket_arn = models.arn
        self.log_bucket = logs.bucket
        self.team_boundary_arn = boundary.arn
        self.register_outputs({"bucket": self.bucket, "bucket_arn": self.bucket_arn, "log_bucket": self.log_bucket,
                               "team_boundary_arn": self.team_boundary_arn})
