"""Cross-region replication: the model store and the log archive copied by S3 into the recovery region.

Each replicated bucket gets, in the recovery region, a replica bucket hardened like its source (versioned, private,
TLS only, SSE-KMS, the same lifecycle and deletion protection, its access logged) and a customer key of its own; a
replication role of its own that S3 assumes for that one bucket; and a replication configuration (the v2 schema,
with a filter) on the source.

Why a separate key per replica rather than a replica of a multi-Region key: S3 treats multi-Region keys as
single-Region keys (replication decrypts with the source key and re-encrypts with the destination key either way),
turning the existing keys into multi-Region keys would replace them (and with them the readability of every object),
and a key of its own keeps the recovery region independent of the primary's key policy and its mistakes.
https://docs.aws.amazon.com/AmazonS3/latest/userguide/replication-config-for-kms-objects.html

Why the per-resource `region` of pulumi-aws v7 rather than a second provider: every replica resource states its region
in its own inputs, where the policy pack and the offline preview see it, and it shares the stack's one provider
configuration (credentials, assumed role, allowed accounts), which a second explicit provider would not inherit.
https://www.pulumi.com/registry/packages/aws/how-to-guides/aws-enhanced-region-support/
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.aws_context import AwsContext
from infra.components.kms_key import CustomerKey, CustomerKeyArgs
from infra.components.model_store import deletion_options
from infra.components.s3_bucket import logged_private_bucket
from infra.config.recovery import RTC_MINUTES
from infra.iam_policies import replication_role_policy, replication_trust_policy

RULE_ID = "replicate-to-recovery-region"


def replication_rule(*, replica_bucket_arn: pulumi.Input[str], replica_key_arn: pulumi.Input[str],
                     replicate_deletes: bool, time_control: bool) -> dict[str, Any]:
    """The one rule of a replication configuration: every object, SSE-KMS ones included, re-encrypted with the
    replica key; with Replication Time Control, 99.99% within 15 minutes, and the metrics RTC needs.

    A filter makes it a v2 rule, which must say whether delete markers are replicated. Deletions of object
    versions never are (S3 does not replicate them), so no delete in the primary removes data from the replica.
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/replication-add-config.html
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/replication-time-control.html
    """
    destination: dict[str, Any] = {"bucket": replica_bucket_arn,
                                   "encryption_configuration": {"replica_kms_key_id": replica_key_arn}}
    if time_control:
        destination["replication_time"] = {"status": "Enabled", "time": {"minutes": RTC_MINUTES}}
        destination["metrics"] = {"status": "Enabled", "event_threshold": {"minutes": RTC_MINUTES}}
    return {
        "id": RULE_ID,
        "status": "Enabled",
        "priority": 1,
        "filter": {},
        "delete_marker_replication": {"status": "Enabled" if replicate_deletes else "Disabled"},
        "source_selection_criteria": {"sse_kms_encrypted_objects": {"status": "Enabled"}},
        "destination": destination,
    }


@dataclass(frozen=True)
class ReplicaSource:
    """One bucket of the stack that S3 copies into the recovery region.

    Attributes:
        purpose: `models` or `log-archive`: names the replica's resources and its key's alias.
        bucket: The source bucket's name.
        bucket_arn: The source bucket's ARN.
        kms_key_arn: The source's customer key (its objects are SSE-KMS with it).
        versioning: The source's versioning: S3 refuses a replication configuration before it is enabled.
        rules: Lifecycle rules of the replica: the source's, so the replica keeps what the source keeps.
        log_expiration_days: Days the replica's access logs are kept.
        deletion_protection: The source's deletion protection (`protect`, `retain`, `none`), the replica's too.
        replicate_deletes: Whether delete markers are replicated (see :func:`replication_rule`).
    """

    purpose: str
    bucket: pulumi.Input[str]
    bucket_arn: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    versioning: pulumi.Resource
    rules: list[dict[str, Any]]
    log_expiration_days: int
    deletion_protection: str
    replicate_deletes: bool


@dataclass(frozen=True)
class Replica:
    """A replica bucket in the recovery region: what a recovery stack serves from."""

    bucket: pulumi.Output[str]
    bucket_arn: pulumi.Output[str]
    log_bucket: pulumi.Output[str]
    kms_key_arn: pulumi.Output[str]

    def contract(self) -> dict[str, pulumi.Output[str]]:
        return {"bucket": self.bucket, "bucketArn": self.bucket_arn, "logBucket": self.log_bucket,
                "kmsKeyArn": self.kms_key_arn}


@dataclass(frozen=True)
class ReplicationArgs:
    """Args of :class:`Replication`.

    Attributes:
        region: The recovery region.
        time_control: Whether S3 Replication Time Control (and its metrics) is on.
        sources: The buckets to replicate.
        key_alias_prefix: Prefix of the replica keys' aliases (`aip-prod`: `alias/aip-prod-models-replica`).
        aws: Account, partition and (primary) region of the stack.
    """

    region: str
    time_control: bool
    sources: tuple[ReplicaSource, ...]
    key_alias_prefix: str
    aws: AwsContext


class Replication(pulumi.ComponentResource):
    """Replica buckets and their keys in the recovery region, and S3 replication from each source into its replica."""

    replicas: dict[str, Replica]

    def __init__(self, name: str, args: ReplicationArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-platform:storage:Replication", name, None, opts)
        self.replicas = {source.purpose: self._replicate(f"{name}-{source.purpose}", source, args)
                         for source in args.sources}
        self.register_outputs({purpose: replica.contract() for purpose, replica in self.replicas.items()})

    def _replicate(self, name: str, source: ReplicaSource, args: ReplicationArgs) -> Replica:
        ctx, region = args.aws, args.region
        # The replica outlives a destroy exactly as its source does, and so does the key that decrypts it.
        keep = pulumi.ResourceOptions.merge(pulumi.ResourceOptions(parent=self),
                                            deletion_options(source.deletion_protection))
        key = CustomerKey(f"{name}-replica", CustomerKeyArgs(
            alias=f"{args.key_alias_prefix}-{source.purpose}-replica", aws=ctx, region=region,
            description=f"Replicas of the {source.purpose} bucket in the recovery region",
            deletion=deletion_options(source.deletion_protection)), opts=pulumi.ResourceOptions(parent=self))
        stored = logged_private_bucket(name, purpose="replica", kms_key_arn=key.arn, rules=source.rules,
                                       log_expiration_days=source.log_expiration_days, account_id=ctx.account_id,
                                       opts=keep, region=region)
        replica = stored.bucket
        role = aws.iam.Role(
            f"{name}-replication", description=f"S3 replicates the {source.purpose} bucket into {region}.",
            assume_role_policy=pulumi.Output.all(ctx.account_id, source.bucket_arn).apply(
                lambda v: json.dumps(replication_trust_policy(v[0], v[1]))),
            opts=pulumi.ResourceOptions(parent=self))
        grants = aws.iam.RolePolicy(
            f"{name}-replication", role=role.id, opts=pulumi.ResourceOptions(parent=self),
            policy=pulumi.Output.all(source.bucket_arn, source.kms_key_arn, replica.arn, key.arn).apply(
                lambda v: json.dumps(replication_role_policy(
                    source_bucket_arn=v[0], source_key_arn=v[1], source_region=ctx.region, replica_bucket_arn=v[2],
                    replica_key_arn=v[3], replica_region=region, replicate_deletes=source.replicate_deletes))))
        # S3 refuses the configuration until both buckets are versioned; objects written before the role may act
        # would wait for a retry.
        aws.s3.BucketReplicationConfig(
            f"{name}-replication", bucket=source.bucket, role=role.arn,
            rules=[replication_rule(replica_bucket_arn=replica.arn, replica_key_arn=key.arn,
                                    replicate_deletes=source.replicate_deletes, time_control=args.time_control)],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[source.versioning, stored.versioning, grants]))
        return Replica(bucket=replica.bucket, bucket_arn=replica.arn, log_bucket=stored.log_bucket.bucket,
                       kms_key_arn=key.arn)
