"""IAM and KMS policy documents as pure functions, so each grant is reviewed and tested in one place."""

from __future__ import annotations

from typing import Any

Policy = dict[str, Any]


def _doc(*statements: dict[str, Any]) -> Policy:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def service_trust_policy(service: str, *, tag_session: bool = False, source_account: str | None = None,
                         source_arn: str | None = None) -> Policy:
    """Let an AWS service (``eks.amazonaws.com``, ``ec2.amazonaws.com``…) assume a role.

    ``source_account`` and ``source_arn`` (a pattern) confine the trust to the service acting for this
    account's own resources, so no one else can make the service act on this role (the confused deputy).
    https://docs.aws.amazon.com/IAM/latest/UserGuide/confused-deputy.html
    """
    actions = ["sts:AssumeRole", "sts:TagSession"] if tag_session else "sts:AssumeRole"
    statement: dict[str, Any] = {"Effect": "Allow", "Principal": {"Service": service}, "Action": actions}
    condition: dict[str, Any] = {}
    if source_account is not None:
        condition["StringEquals"] = {"aws:SourceAccount": source_account}
    if source_arn is not None:
        condition["ArnLike"] = {"aws:SourceArn": source_arn}
    if condition:
        statement["Condition"] = condition
    return _doc(statement)


def vpc_flow_log_trust_policy(account_id: str, partition: str, region: str) -> Policy:
    """The VPC flow log service may assume the role only for this account's flow logs in this region.

    https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-iam-role.html
    """
    return service_trust_policy("vpc-flow-logs.amazonaws.com", source_account=account_id,
                                source_arn=f"arn:{partition}:ec2:{region}:{account_id}:vpc-flow-log/*")


def irsa_trust_policy(oidc_provider_arn: str, issuer_url: str, namespace: str, service_account: str) -> Policy:
    """Let exactly one Kubernetes service account assume a role through the cluster's OIDC provider (IRSA)."""
    issuer = issuer_url.removeprefix("https://")
    return _doc({
        "Effect": "Allow",
        "Principal": {"Federated": oidc_provider_arn},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {
            f"{issuer}:sub": f"system:serviceaccount:{namespace}:{service_account}",
            f"{issuer}:aud": "sts.amazonaws.com",
        }},
    })


def kms_key_policy(account_id: str, partition: str, region: str, *, grants_for: tuple[str, ...] = ()) -> Policy:
    """Key policy: the account administers the key through IAM; ``grants_for`` adds service access.

    ``grants_for`` may hold ``"autoscaling"`` (managed node groups launch encrypted volumes through the
    Auto Scaling service-linked role, which needs the key), ``"events"`` (EventBridge rules deliver to an SQS
    queue the key encrypts) and ``"logs"`` (CloudWatch Logs encrypts log groups of this account and region).
    """
    statements: list[dict[str, Any]] = [{
        "Sid": "AccountAdministersKeyThroughIam",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:{partition}:iam::{account_id}:root"},
        "Action": "kms:*",
        "Resource": "*",
    }]
    if "autoscaling" in grants_for:
        # https://docs.aws.amazon.com/autoscaling/ec2/userguide/key-policy-requirements-EBS-encryption.html
        role = (f"arn:{partition}:iam::{account_id}:role/aws-service-role/autoscaling.amazonaws.com/"
                "AWSServiceRoleForAutoScaling")
        statements += [
            {"Sid": "AutoScalingUsesKeyForVolumes", "Effect": "Allow", "Principal": {"AWS": role},
             "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
             "Resource": "*"},
            {"Sid": "AutoScalingAttachesVolumes", "Effect": "Allow", "Principal": {"AWS": role},
             "Action": "kms:CreateGrant", "Resource": "*",
             "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}}},
        ]
    if "events" in grants_for:
        # EventBridge delivers to an SQS queue encrypted with the key; SQS uses the key as EventBridge. Only the
        # queues this key encrypts are reachable that way, and their queue policies admit this stack's rules alone.
        # https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-key-management.html
        statements.append({
            "Sid": "EventBridgeSendsToEncryptedQueues", "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": "*",
        })
    if "logs" in grants_for:
        # https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html
        statements.append({
            "Sid": "CloudWatchLogsEncryptsLogGroups", "Effect": "Allow",
            "Principal": {"Service": f"logs.{region}.amazonaws.com"},
            "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
            "Resource": "*",
            "Condition": {"ArnLike": {
                "kms:EncryptionContext:aws:logs:arn": f"arn:{partition}:logs:{region}:{account_id}:log-group:*"}},
        })
    return _doc(*statements)


def tls_only_statement(bucket_arn: str) -> dict[str, Any]:
    """Deny every request to the bucket that does not use TLS."""
    return {
        "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Resource": [bucket_arn, f"{bucket_arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def tls_only_bucket_policy(bucket_arn: str) -> Policy:
    """A bucket policy that only denies requests without TLS (access itself is granted to IAM roles)."""
    return _doc(tls_only_statement(bucket_arn))


def model_bucket_policy(bucket_arn: str) -> Policy:
    return tls_only_bucket_policy(bucket_arn)


def access_log_bucket_policy(log_bucket_arn: str, source_bucket_arn: str, account_id: str) -> Policy:
    """TLS only, and S3's logging service may write access logs of ``source_bucket_arn`` only."""
    return _doc(
        tls_only_statement(log_bucket_arn),
        {
            "Sid": "S3ServerAccessLogsDelivery", "Effect": "Allow",
            "Principal": {"Service": "logging.s3.amazonaws.com"},
            "Action": "s3:PutObject", "Resource": f"{log_bucket_arn}/*",
            "Condition": {"ArnLike": {"aws:SourceArn": source_bucket_arn},
                          "StringEquals": {"aws:SourceAccount": account_id}},
        },
    )


def prefix_read_policy(bucket_arn: str, prefix: str, key_arn: str, region: str) -> Policy:
    """Read-only access to one prefix of the model store, decrypting only through S3."""
    prefix = prefix.rstrip("/") + "/"
    return _doc(
        {"Sid": "ListTeamPrefix", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": bucket_arn,
         "Condition": {"StringLike": {"s3:prefix": [prefix, f"{prefix}*"]}}},
        # KServe's storage initializer calls HeadBucket first, which is s3:ListBucket without a prefix.
        # The same grant lets an unprefixed listing through: key names of other teams, never contents.
        {"Sid": "HeadModelBucket", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": bucket_arn,
         "Condition": {"Null": {"s3:prefix": "true"}}},
        {"Sid": "ReadTeamObjects", "Effect": "Allow", "Action": ["s3:GetObject", "s3:GetObjectVersion"],
         "Resource": f"{bucket_arn}/{prefix}*"},
        {"Sid": "DecryptThroughS3", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": key_arn,
         "Condition": {"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}}},
    )


TEAMS_PREFIX = "teams/"


def team_boundary_policy(bucket_arn: str, key_arn: str, region: str) -> Policy:
    """The most any team role may ever do: read the model store's team prefixes.

    Team roles carry it as their permissions boundary, so even a team role whose own policy was
    widened (by a team's deploy credentials) cannot reach past it.
    """
    return prefix_read_policy(bucket_arn, TEAMS_PREFIX, key_arn, region)


def team_deploy_policy(bucket_arn: str, prefix: str, key_arn: str, region: str) -> Policy:
    """What a team's CI needs in AWS to run the team's stack: write and read its own models, nothing else.

    A team stack uploads packaged model archives (S3 objects under the team's prefix, encrypted with the
    model store's key and tagged) and reads them back after each write and on refresh. Reading an SSE-KMS
    object back, the AWS provider looks up S3's default key (`alias/aws/s3`) to tell it from the object's
    own key, hence DescribeKey on that alias only. Kubernetes rights come from the team's access entry and
    namespaced Role, not from IAM.
    """
    prefix = prefix.rstrip("/") + "/"
    _, partition, _, key_region, account, _ = key_arn.split(":", 5)
    return _doc(
        {"Sid": "ListTeamPrefix", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": bucket_arn,
         "Condition": {"StringLike": {"s3:prefix": [prefix, f"{prefix}*"]}}},
        {"Sid": "WriteTeamModels", "Effect": "Allow",
         "Action": ["s3:PutObject", "s3:PutObjectTagging", "s3:GetObject", "s3:GetObjectVersion",
                    "s3:GetObjectTagging"],
         "Resource": f"{bucket_arn}/{prefix}*"},
        {"Sid": "EncryptThroughS3", "Effect": "Allow", "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
         "Resource": key_arn, "Condition": {"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}}},
        {"Sid": "DescribeS3DefaultKey", "Effect": "Allow", "Action": "kms:DescribeKey",
         "Resource": f"arn:{partition}:kms:{key_region}:{account}:key/*",
         "Condition": {"StringEquals": {"kms:RequestAlias": "alias/aws/s3"}}},
    )


def ebs_csi_kms_policy(key_arn: str) -> Policy:
    """What the EBS CSI driver needs on a customer key to create encrypted volumes."""
    return _doc(
        {"Effect": "Allow", "Action": ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"],
         "Resource": key_arn, "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}}},
        {"Effect": "Allow",
         "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
         "Resource": key_arn},
    )


def snapshot_repository_policy(bucket_arn: str, key_arn: str, region: str, write_prefix: str | None = None) -> Policy:
    """What Elasticsearch's S3 snapshot repository needs on its own bucket, and nothing elsewhere.

    The actions are those Elastic recommends for a repository; objects are encrypted by the bucket's
    default SSE-KMS key, so the role may use that key, and only through S3. With ``write_prefix`` (a recovery
    stack, whose bucket also holds the replicated snapshots it restores from) it reads the whole bucket but
    writes and deletes only under that prefix.
    https://www.elastic.co/docs/deploy-manage/tools/snapshot-and-restore/s3-repository#repository-s3-permissions
    """
    writes = ["s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"]
    snapshots: list[dict[str, Any]] = [
        {"Sid": "ReadWriteSnapshots", "Effect": "Allow", "Action": ["s3:GetObject", *writes],
         "Resource": f"{bucket_arn}/*"}]
    if write_prefix is not None:
        snapshots = [
            {"Sid": "ReadSnapshots", "Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{bucket_arn}/*"},
            {"Sid": "WriteOwnSnapshots", "Effect": "Allow", "Action": writes,
             "Resource": f"{bucket_arn}/{write_prefix.strip('/')}/*"}]
    return _doc(
        {"Sid": "ListRepositoryBucket", "Effect": "Allow",
         "Action": ["s3:ListBucket", "s3:GetBucketLocation", "s3:ListBucketMultipartUploads",
                    "s3:ListBucketVersions"],
         "Resource": bucket_arn},
        *snapshots,
        # Multipart uploads to an SSE-KMS bucket need Decrypt as well as GenerateDataKey.
        {"Sid": "EncryptThroughS3", "Effect": "Allow", "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
         "Resource": key_arn, "Condition": {"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}}},
    )


def replication_trust_policy(account_id: str, source_bucket_arn: str) -> Policy:
    """S3 may assume the role only to replicate this account's one source bucket.

    https://docs.aws.amazon.com/AmazonS3/latest/userguide/setting-repl-config-perm-overview.html
    """
    return service_trust_policy("s3.amazonaws.com", source_account=account_id, source_arn=source_bucket_arn)


def _s3_encryption_context(bucket_arn: str) -> list[str]:
    # With S3 Bucket Keys the context is the bucket's ARN; objects written before they were enabled carry their own.
    # https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucket-key.html#bucket-key-changes
    return [bucket_arn, f"{bucket_arn}/*"]


def replication_role_policy(*, source_bucket_arn: str, source_key_arn: str, source_region: str,
                            replica_bucket_arn: str, replica_key_arn: str, replica_region: str,
                            replicate_deletes: bool) -> Policy:
    """What S3 needs to copy one bucket's SSE-KMS objects into its replica, and nothing more.

    It reads the source's replication configuration and object versions (never the current objects through
    GetObject), decrypts with the source key and encrypts with the replica key, each only through S3 in its own
    region and only for objects of that bucket; it writes replicas, their tags and (where delete markers are
    replicated) delete markers to the replica bucket alone. Nothing lets it delete an object version.
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/replication-config-for-kms-objects.html
    """
    writes = ["s3:ReplicateObject", "s3:ReplicateTags"] + (["s3:ReplicateDelete"] if replicate_deletes else [])
    return _doc(
        {"Sid": "ReadReplicationConfiguration", "Effect": "Allow",
         "Action": ["s3:GetReplicationConfiguration", "s3:ListBucket"], "Resource": source_bucket_arn},
        {"Sid": "ReadSourceVersions", "Effect": "Allow",
         "Action": ["s3:GetObjectVersionForReplication", "s3:GetObjectVersionAcl", "s3:GetObjectVersionTagging"],
         "Resource": f"{source_bucket_arn}/*"},
        {"Sid": "WriteReplicas", "Effect": "Allow", "Action": writes, "Resource": f"{replica_bucket_arn}/*"},
        {"Sid": "DecryptSourceThroughS3", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": source_key_arn,
         "Condition": {"StringEquals": {"kms:ViaService": f"s3.{source_region}.amazonaws.com"},
                       "StringLike": {"kms:EncryptionContext:aws:s3:arn": _s3_encryption_context(source_bucket_arn)}}},
        {"Sid": "EncryptReplicasThroughS3", "Effect": "Allow", "Action": ["kms:Encrypt", "kms:GenerateDataKey"],
         "Resource": replica_key_arn,
         "Condition": {"StringEquals": {"kms:ViaService": f"s3.{replica_region}.amazonaws.com"},
                       "StringLike": {"kms:EncryptionContext:aws:s3:arn":
                                      _s3_encryption_context(replica_bucket_arn)}}},
    )


def karpenter_controller_policy(*, cluster_name: str, partition: str, region: str, account_id: str,
                                node_role_arn: str, queue_arn: str, queue_key_arn: str, volume_key_arn: str) -> Policy:
    """What the Karpenter controller needs, scoped to this cluster's nodes as Karpenter's reference policy scopes it.

    Karpenter tags everything it creates with ``kubernetes.io/cluster/<cluster>: owned``, ``eks:eks-cluster-name`` and
    ``karpenter.sh/nodepool`` (instance profiles: ``karpenter.k8s.aws/ec2nodeclass`` and the region): creation
    requires those request tags, and tagging, deletion and termination those resource tags, so the controller can
    neither launch untagged capacity nor touch instances it did not launch. It may pass the Karpenter node role only,
    read AMI ids from the EKS-optimized AMI parameters only, describe only this cluster, and consume only its own
    interruption queue. Volumes are encrypted with the platform's customer key, which it may use through EC2 only.
    Left out: the zonal-shift statement (``settings.enableZonalShift`` stays off).
    https://github.com/aws/karpenter-provider-aws/blob/v1.14.1/website/content/en/v1.14/getting-started/getting-started-with-karpenter/cloudformation.yaml
    """
    ec2 = f"arn:{partition}:ec2:{region}"
    owned = {f"aws:RequestTag/kubernetes.io/cluster/{cluster_name}": "owned",
             "aws:RequestTag/eks:eks-cluster-name": cluster_name}
    resource_owned = {f"aws:ResourceTag/kubernetes.io/cluster/{cluster_name}": "owned"}
    launched = [f"{ec2}:{account_id}:{kind}/*"
                for kind in ("fleet", "instance", "volume", "network-interface", "launch-template",
                             "spot-instances-request")]
    profiles = f"arn:{partition}:iam::{account_id}:instance-profile/*"
    profile_tags = {"aws:ResourceTag/topology.kubernetes.io/region": region, **resource_owned}
    via_ec2 = {"kms:ViaService": f"ec2.{region}.amazonaws.com"}
    return _doc(
        # AMIs and snapshots belong to Amazon; subnets, security groups and capacity reservations may be shared
        # with this account by another (a VPC or reservation shared through AWS RAM): hence no account in these.
        {"Sid": "LaunchFromSelectedResources", "Effect": "Allow", "Action": ["ec2:RunInstances", "ec2:CreateFleet"],
         "Resource": [f"{ec2}::image/*", f"{ec2}::snapshot/*", f"{ec2}:*:security-group/*", f"{ec2}:*:subnet/*",
                      f"{ec2}:*:capacity-reservation/*", f"{ec2}:*:placement-group/*"]},
        {"Sid": "LaunchFromOwnLaunchTemplates", "Effect": "Allow", "Action": ["ec2:RunInstances", "ec2:CreateFleet"],
         "Resource": f"{ec2}:{account_id}:launch-template/*",
         "Condition": {"StringEquals": resource_owned,
                       "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"}}},
        {"Sid": "CreateTaggedNodes", "Effect": "Allow",
         "Action": ["ec2:RunInstances", "ec2:CreateFleet", "ec2:CreateLaunchTemplate"], "Resource": launched,
         "Condition": {"StringEquals": owned, "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"}}},
        {"Sid": "TagOnCreation", "Effect": "Allow", "Action": "ec2:CreateTags", "Resource": launched,
         "Condition": {"StringEquals": {**owned, "ec2:CreateAction": ["RunInstances", "CreateFleet",
                                                                      "CreateLaunchTemplate"]},
                       "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"}}},
        {"Sid": "TagOwnInstances", "Effect": "Allow", "Action": "ec2:CreateTags",
         "Resource": f"{ec2}:{account_id}:instance/*",
         "Condition": {"StringEquals": resource_owned,
                       "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"},
                       "StringEqualsIfExists": {"aws:RequestTag/eks:eks-cluster-name": cluster_name},
                       "ForAllValues:StringEquals": {"aws:TagKeys": ["eks:eks-cluster-name", "karpenter.sh/nodeclaim",
                                                                     "Name"]}}},
        {"Sid": "DeleteOwnNodes", "Effect": "Allow", "Action": ["ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"],
         "Resource": [f"{ec2}:{account_id}:instance/*", f"{ec2}:{account_id}:launch-template/*"],
         "Condition": {"StringEquals": resource_owned,
                       "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"}}},
        # EC2 creates the encrypted root volumes with the caller's rights on the key.
        # https://docs.aws.amazon.com/ebs/latest/userguide/ebs-encryption-requirements.html
        {"Sid": "EncryptVolumesThroughEc2", "Effect": "Allow",
         "Action": ["kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:GenerateDataKeyWithoutPlaintext",
                    "kms:DescribeKey"],
         "Resource": volume_key_arn, "Condition": {"StringEquals": via_ec2}},
        {"Sid": "AttachEncryptedVolumes", "Effect": "Allow", "Action": "kms:CreateGrant", "Resource": volume_key_arn,
         "Condition": {"StringEquals": via_ec2, "Bool": {"kms:GrantIsForAWSResource": "true"}}},
        {"Sid": "PassNodeRole", "Effect": "Allow", "Action": "iam:PassRole", "Resource": node_role_arn,
         "Condition": {"StringEquals": {"iam:PassedToService": ["ec2.amazonaws.com", "ec2.amazonaws.com.cn"]}}},
        {"Sid": "CreateTaggedInstanceProfiles", "Effect": "Allow", "Action": "iam:CreateInstanceProfile",
         "Resource": profiles,
         "Condition": {"StringEquals": {**owned, "aws:RequestTag/topology.kubernetes.io/region": region},
                       "StringLike": {"aws:RequestTag/karpenter.k8s.aws/ec2nodeclass": "*"}}},
        {"Sid": "TagOwnInstanceProfiles", "Effect": "Allow", "Action": "iam:TagInstanceProfile", "Resource": profiles,
         "Condition": {"StringEquals": {**profile_tags, **owned,
                                        "aws:RequestTag/topology.kubernetes.io/region": region},
                       "StringLike": {"aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass": "*",
                                      "aws:RequestTag/karpenter.k8s.aws/ec2nodeclass": "*"}}},
        {"Sid": "ManageOwnInstanceProfiles", "Effect": "Allow",
         "Action": ["iam:AddRoleToInstanceProfile", "iam:RemoveRoleFromInstanceProfile", "iam:DeleteInstanceProfile"],
         "Resource": profiles,
         "Condition": {"StringEquals": profile_tags,
                       "StringLike": {"aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass": "*"}}},
        {"Sid": "ReadInstanceProfiles", "Effect": "Allow", "Action": "iam:GetInstanceProfile", "Resource": profiles},
        # ListInstanceProfiles and the Describe calls support no resource-level permissions.
        {"Sid": "ListInstanceProfiles", "Effect": "Allow", "Action": "iam:ListInstanceProfiles", "Resource": "*"},
        {"Sid": "DiscoverInRegion", "Effect": "Allow", "Resource": "*",
         "Action": ["ec2:DescribeCapacityReservations", "ec2:DescribeImages", "ec2:DescribeInstances",
                    "ec2:DescribeInstanceStatus", "ec2:DescribeInstanceTypeOfferings", "ec2:DescribeInstanceTypes",
                    "ec2:DescribeLaunchTemplates", "ec2:DescribePlacementGroups", "ec2:DescribeSecurityGroups",
                    "ec2:DescribeSpotPriceHistory", "ec2:DescribeSubnets"],
         "Condition": {"StringEquals": {"aws:RequestedRegion": region}}},
        # An `al2023@<version>` alias resolves through the public EKS-optimized AMI parameters.
        {"Sid": "ResolveAmiAliases", "Effect": "Allow", "Action": "ssm:GetParameter",
         "Resource": f"arn:{partition}:ssm:{region}::parameter/aws/service/eks/optimized-ami/*"},
        {"Sid": "ReadPrices", "Effect": "Allow", "Action": "pricing:GetProducts", "Resource": "*"},
        {"Sid": "DescribeOwnCluster", "Effect": "Allow", "Action": "eks:DescribeCluster",
         "Resource": f"arn:{partition}:eks:{region}:{account_id}:cluster/{cluster_name}"},
        {"Sid": "ConsumeInterruptionQueue", "Effect": "Allow",
         "Action": ["sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage"], "Resource": queue_arn},
        {"Sid": "DecryptInterruptionEvents", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": queue_key_arn,
         "Condition": {"StringEquals": {"kms:ViaService": f"sqs.{region}.amazonaws.com"}}},
    )


def interruption_queue_policy(queue_arn: str, rule_arns: list[str]) -> Policy:
    """Only this stack's EventBridge rules may send to Karpenter's interruption queue, and only over TLS.

    Karpenter's reference policy also admits ``sqs.amazonaws.com``; nothing sends to this queue as SQS itself, so
    only EventBridge is admitted, and only for the rules that target the queue (no other account's or stack's
    rule can feed it fake interruptions).
    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html#eb-sqs-permissions
    """
    return _doc(
        {"Sid": "EventBridgeRulesSend", "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
         "Action": "sqs:SendMessage", "Resource": queue_arn,
         "Condition": {"ArnEquals": {"aws:SourceArn": rule_arns}}},
        {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "sqs:*", "Resource": queue_arn,
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
    )


def managed_policy_arn(partition: str, name: str) -> str:
    return f"arn:{partition}:iam::aws:policy/{name}"
