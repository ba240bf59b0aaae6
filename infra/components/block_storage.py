"""Persistent volumes: the EBS CSI driver add-on (with its IRSA role) and an encrypted gp3 default class."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra.aws_context import AwsContext
from infra.components.irsa_role import irsa_role
from infra.iam_policies import ebs_csi_kms_policy, managed_policy_arn
from infra.versions import EBS_CSI_DRIVER

CSI_NAMESPACE = "kube-system"
CSI_SERVICE_ACCOUNT = "ebs-csi-controller-sa"
DEFAULT_STORAGE_CLASS = "gp3-encrypted"


def storage_class_parameters(kms_key_arn: str) -> dict[str, str]:
    """gp3 volumes encrypted with the platform's customer key.

    https://github.com/kubernetes-sigs/aws-ebs-csi-driver/blob/master/docs/parameters.md
    """
    return {"type": "gp3", "encrypted": "true", "kmsKeyId": kms_key_arn, "csi.storage.k8s.io/fstype": "ext4"}


@dataclass(frozen=True)
class BlockStorageArgs:
    """Args of :class:`BlockStorage`.

    Attributes:
        cluster_name: EKS cluster that gets the add-on.
        oidc_provider_arn: The cluster's IAM OIDC provider.
        oidc_issuer_url: The cluster's OIDC issuer.
        volume_key_arn: KMS key that encrypts volumes.
        provider: Kubernetes provider of the cluster.
        aws: Account, partition and region.
    """

    cluster_name: pulumi.Input[str]
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer_url: pulumi.Input[str]
    volume_key_arn: pulumi.Input[str]
    provider: k8s.Provider
    aws: AwsContext


class BlockStorage(pulumi.ComponentResource):
    """The EBS CSI driver, least-privileged through IRSA, and the default StorageClass.

    https://docs.aws.amazon.com/eks/latest/userguide/ebs-csi.html
    """

    storage_class_name: str

    def __init__(self, name: str, args: BlockStorageArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-platform:storage:BlockStorage", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        role = irsa_role(f"{name}-ebs-csi", oidc_provider_arn=args.oidc_provider_arn,
                         oidc_issuer_url=args.oidc_issuer_url, namespace=CSI_NAMESPACE,
                         service_account=CSI_SERVICE_ACCOUNT, parent=self)
        managed = aws.iam.RolePolicyAttachment(
            f"{name}-ebs-csi", role=role.name, opts=child,
            policy_arn=args.aws.partition.apply(
                lambda p: managed_policy_arn(p, "service-role/AmazonEBSCSIDriverPolicy")))
        kms = aws.iam.RolePolicy(f"{name}-ebs-csi-kms", role=role.id, opts=child,
                                 policy=pulumi.Output.from_input(args.volume_key_arn).apply(
                                     lambda arn: json.dumps(ebs_csi_kms_policy(arn))))
        addon = aws.eks.Addon(
            f"{name}-ebs-csi",
            cluster_name=args.cluster_name,
            addon_name=EBS_CSI_DRIVER.name,
            addon_version=EBS_CSI_DRIVER.version,
            service_account_role_arn=role.arn,
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="OVERWRITE",
            # An add-on is identified by its name in the cluster: a replacement must remove the old one first.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[managed, kms], delete_before_replace=True),
        )
        self.storage_class_name = DEFAULT_STORAGE_CLASS
        k8s.storage.v1.StorageClass(
            f"{name}-gp3",
            metadata=self._metadata(),
            provisioner="ebs.csi.aws.com",
            parameters=pulumi.Output.from_input(args.volume_key_arn).apply(storage_class_parameters),
            reclaim_policy="Delete",
            volume_binding_mode="WaitForFirstConsumer",
            allow_volume_expansion=True,
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=[addon]),
        )
        self.register_outputs({"storage_class_name": self.storage_class_name})

    @staticmethod
    def _metadata() -> dict[str, Any]:
        return {"name": DEFAULT_STORAGE_CLASS,
                "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}}
