"""The model store: an S3 bucket for model artifacts, and a separate bucket for its access logs."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.aws_context import AwsContext
from infra.config import ModelStoreConfig
from infra.iam_policies import access_log_bucket_policy, model_bucket_policy, team_boundary_policy


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
        self._keep = pulumi.ResourceOptions.merge(pulumi.ResourceOptions(parent=self),
                                                  deletion_options(cfg.deletion_protection))
        logs = aws.s3.Bucket(f"{name}-access-logs", force_destroy=False, opts=self._keep)
        # S3 server access logs can only be delivered to a bucket encrypted with SSE-S3.
        # https://docs.aws.amazon.com/AmazonS3/latest/userguide/enable-server-access-logging.html
        self._harden(f"{name}-access-logs", logs, sse={"sse_algorithm": "AES256"},
                     rules=[{"id": "expire-access-logs", "status": "Enabled", "filter": {},
                             "expiration": {"days": cfg.access_log_expiration_days},
                             "noncurrent_version_expiration": {"noncurrent_days": 30}}])
        models = aws.s3.Bucket(f"{name}-models", force_destroy=False, opts=self._keep)
        self._harden(f"{name}-models", models,
                     sse={"sse_algorithm": "aws:kms", "kms_master_key_id": args.kms_key_arn},
                     rules=lifecycle_rules(cfg))
        child = self._keep
        aws.s3.BucketPolicy(f"{name}-models", bucket=models.id, opts=child,
                            policy=models.arn.apply(lambda arn: json.dumps(model_bucket_policy(arn))))
        aws.s3.BucketPolicy(f"{name}-access-logs", bucket=logs.id, opts=child,
                            policy=pulumi.Output.all(logs.arn, models.arn, args.aws.account_id).apply(
                                lambda v: json.dumps(access_log_bucket_policy(v[0], v[1], v[2]))))
        aws.s3.BucketLogging(f"{name}-models", bucket=models.id, target_bucket=logs.id,
                             target_prefix="models/", opts=child)
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

    def _harden(self, name: str, bucket: aws.s3.Bucket, *, sse: dict, rules: list[dict]) -> None:
        """Ownership enforced, public access blocked, versioned, encrypted by default, with lifecycle rules."""
        child = self._keep
        aws.s3.BucketOwnershipControls(name, bucket=bucket.id, rule={"object_ownership": "BucketOwnerEnforced"},
                                       opts=child)
        aws.s3.BucketPublicAccessBlock(name, bucket=bucket.id, block_public_acls=True, block_public_policy=True,
                                       ignore_public_acls=True, restrict_public_buckets=True, opts=child)
        aws.s3.BucketVersioning(name, bucket=bucket.id, versioning_configuration={"status": "Enabled"}, opts=child)
        aws.s3.BucketServerSideEncryptionConfiguration(
            name, bucket=bucket.id, opts=child,
            rules=[{"apply_server_side_encryption_by_default": sse, "bucket_key_enabled": True}])
        aws.s3.BucketLifecycleConfiguration(name, bucket=bucket.id, rules=rules, opts=child)
