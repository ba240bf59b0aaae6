"""The log archive: the S3 bucket Elasticsearch snapshots go to, and the role it writes them with.

The bucket is hardened like the model store (infra/components/s3_bucket.py): SSE-KMS with its own
customer key, versioned, private, TLS only, its access logged. Only the Elasticsearch pods' service
account can assume the role, and the role reaches this bucket and this key, through S3, and nothing else.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.aws_context import AwsContext
from infra.components.irsa_role import irsa_role
from infra.components.logging_stack import ELASTICSEARCH_SERVICE_ACCOUNT, LOGGING_NAMESPACE
from infra.components.model_store import deletion_options
from infra.components.s3_bucket import EXPIRED_DELETE_MARKERS, ExistingBucket, data_bucket
from infra.config.observability import LogsConfig
from infra.iam_policies import snapshot_repository_policy

# Snapshot files Elasticsearch deleted stay recoverable, as noncurrent versions, this long.
NONCURRENT_VERSION_DAYS = 30
ACCESS_LOG_EXPIRATION_DAYS = 365


def archive_lifecycle_rules() -> list[dict[str, Any]]:
    """Old versions of deleted or overwritten files expire, then their delete markers; current objects never do.

    Elasticsearch alone deletes snapshot files (SLM retention): an object a lifecycle rule expired
    could still be referenced by a snapshot, and the repository would be corrupt.
    https://www.elastic.co/docs/deploy-manage/tools/snapshot-and-restore/s3-repository#repository-s3-storage-classes
    """
    return [{
        "id": "expire-noncurrent-versions",
        "status": "Enabled",
        "filter": {},
        "noncurrent_version_expiration": {"noncurrent_days": NONCURRENT_VERSION_DAYS},
        # Without days or a date, this expiration touches delete markers only, never a current object.
        "expiration": EXPIRED_DELETE_MARKERS,
        "abort_incomplete_multipart_upload": {"days_after_initiation": 7},
    }]


@dataclass(frozen=True)
class LogArchiveArgs:
    """Args of :class:`LogArchive`.

    Attributes:
        config: The logs section of the stack config (its `archive_deletion_protection`).
        kms_key_arn: Customer key that encrypts the snapshots.
        oidc_provider_arn: The cluster's IAM OIDC provider.
        oidc_issuer_url: The cluster's OIDC issuer.
        aws: Account, partition and region.
        namespace: Namespace of the Elasticsearch pods.
        service_account: Service account of the Elasticsearch pods.
        existing: The bucket to use instead of creating one: in a recovery stack, the replica of the restored
            stack's archive (encrypted with ``kms_key_arn``, the replica key).
        write_prefix: Where alone Elasticsearch may write (its repository's base path) when the bucket holds
            snapshots it must only read (the replicated ones, in a recovery stack); None: the whole bucket.
    """

    config: LogsConfig
    kms_key_arn: pulumi.Input[str]
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer_url: pulumi.Input[str]
    aws: AwsContext
    namespace: str = LOGGING_NAMESPACE
    service_account: str = ELASTICSEARCH_SERVICE_ACCOUNT
    existing: ExistingBucket | None = None
    write_prefix: str | None = None


class LogArchive(pulumi.ComponentResource):
    """The snapshot bucket, its access-log bucket, and Elasticsearch's IRSA role for it."""

    bucket: pulumi.Output[str]
    bucket_arn: pulumi.Output[str]
    log_bucket: pulumi.Output[str]
    role_arn: pulumi.Output[str]
    # The bucket's versioning, which replication waits for; None for an existing bucket.
    versioning: aws.s3.BucketVersioning | None

    def __init__(self, name: str, args: LogArchiveArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-platform:observability:LogArchive", name, None, opts)
        keep = pulumi.ResourceOptions.merge(pulumi.ResourceOptions(parent=self),
                                            deletion_options(args.config.archive_deletion_protection))
        # An existing archive (another stack's replica): Elasticsearch here restores from it and snapshots into it.
        stored = data_bucket(name, existing=args.existing, purpose="snapshots", kms_key_arn=args.kms_key_arn,
                             rules=archive_lifecycle_rules(), log_expiration_days=ACCESS_LOG_EXPIRATION_DAYS,
                             account_id=args.aws.account_id, opts=keep)
        self.bucket, self.bucket_arn = stored.bucket, stored.arn
        self.log_bucket, self.versioning = stored.log_bucket, stored.versioning
        role = irsa_role(f"{name}-elasticsearch", oidc_provider_arn=args.oidc_provider_arn,
                         oidc_issuer_url=args.oidc_issuer_url, namespace=args.namespace,
                         service_account=args.service_account, parent=self,
                         description="Elasticsearch writes and reads log snapshots in the log archive.")
        aws.iam.RolePolicy(f"{name}-elasticsearch", role=role.id, opts=pulumi.ResourceOptions(parent=self),
                           policy=pulumi.Output.all(self.bucket_arn, args.kms_key_arn).apply(
                               lambda v: json.dumps(snapshot_repository_policy(v[0], v[1], args.aws.region,
                                                                               write_prefix=args.write_prefix))))
        self.role_arn = role.arn
        self.register_outputs({"bucket": self.bucket, "bucket_arn": self.bucket_arn, "log_bucket": self.log_bucket,
                               "role_arn": self.role_arn})
