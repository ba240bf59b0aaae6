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
    Auto Scaling service-linked role, which needs the key) and ``"logs"`` (CloudWatch Logs encrypts
    log groups of this account and region).
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


def snapshot_repository_policy(bucket_arn: str, key_arn: str, region: str) -> Policy:
    """What Elasticsearch's S3 snapshot repository needs on its own bucket, and nothing elsewhere.

    The actions are those Elastic recommends for a repository; objects are encrypted by the bucket's
    default SSE-KMS key, so the role may use that key, and only through S3.
    https://www.elastic.co/docs/deploy-manage/tools/snapshot-and-restore/s3-repository#repository-s3-permissions
    """
    return _doc(
        {"Sid": "ListRepositoryBucket", "Effect": "Allow",
         "Action": ["s3:ListBucket", "s3:GetBucketLocation", "s3:ListBucketMultipartUploads",
                    "s3:ListBucketVersions"],
         "Resource": bucket_arn},
        {"Sid": "ReadWriteSnapshots", "Effect": "Allow",
         "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload",
                    "s3:ListMultipartUploadParts"],
         "Resource": f"{bucket_arn}/*"},
        # Multipart uploads to an SSE-KMS bucket need Decrypt as well as GenerateDataKey.
        {"Sid": "EncryptThroughS3", "Effect": "Allow", "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
         "Resource": key_arn, "Condition": {"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}}},
    )


def managed_policy_arn(partition: str, name: str) -> str:
    return f"arn:{partition}:iam::aws:policy/{name}"
