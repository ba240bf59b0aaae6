"""The cluster autoscaler: grows node groups (GPU pools from zero included) for pending pods, shrinks idle ones."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra.aws_context import AwsContext
from infra.components.irsa_role import irsa_role
from infra.helm import release_args
from infra.versions import CLUSTER_AUTOSCALER, CLUSTER_AUTOSCALER_IMAGE_TAGS

NAMESPACE = "kube-system"
SERVICE_ACCOUNT = "cluster-autoscaler"


def autoscaler_policy(cluster_name: str) -> dict[str, Any]:
    """Describe everything; change sizes only of this cluster's auto-discovered groups.

    eks:DescribeNodegroup lets it learn a managed group's labels and taints, which it needs to scale a
    GPU pool up from zero nodes.
    https://github.com/kubernetes/autoscaler/blob/master/cluster-autoscaler/cloudprovider/aws/README.md
    """
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "Discover", "Effect": "Allow", "Resource": "*", "Action": [
            "autoscaling:DescribeAutoScalingGroups", "autoscaling:DescribeAutoScalingInstances",
            "autoscaling:DescribeLaunchConfigurations", "autoscaling:DescribeScalingActivities",
            "autoscaling:DescribeTags", "ec2:DescribeImages", "ec2:DescribeInstanceTypes",
            "ec2:DescribeLaunchTemplateVersions", "ec2:GetInstanceTypesFromInstanceRequirements",
            "eks:DescribeNodegroup"]},
        {"Sid": "ResizeOwnGroups", "Effect": "Allow", "Resource": "*",
         "Action": ["autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"],
         "Condition": {"StringEquals": {f"aws:ResourceTag/k8s.io/cluster-autoscaler/{cluster_name}": "owned"}}},
    ]}


def autoscaler_values(cluster_name: str, cluster_version: str, region: str) -> dict[str, Any]:
    """Chart values: auto-discovery of this cluster's groups, least-waste expansion, on system nodes."""
    return {
        "cloudProvider": "aws",
        "awsRegion": region,
        "autoDiscovery": {"clusterName": cluster_name},
        "image": {"tag": CLUSTER_AUTOSCALER_IMAGE_TAGS[cluster_version]},
        "rbac": {"serviceAccount": {"create": True, "name": SERVICE_ACCOUNT}},
        "extraArgs": {"expander": "least-waste", "balance-similar-node-groups": "true",
                      "skip-nodes-with-system-pods": "false"},
        "nodeSelector": {"ai-platform.io/node-role": "system"},
        "priorityClassName": "system-cluster-critical",
    }


@dataclass(frozen=True)
class ClusterAutoscalerArgs:
    """Args of :class:`ClusterAutoscaler`.

    Attributes:
        cluster_name: EKS cluster whose node groups it scales.
        cluster_version: Kubernetes version (picks the matching autoscaler image).
        oidc_provider_arn: The cluster's IAM OIDC provider.
        oidc_issuer_url: The cluster's OIDC issuer.
        provider: Kubernetes provider of the cluster.
        aws: Account, partition and region.
    """

    cluster_name: str
    cluster_version: str
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer_url: pulumi.Input[str]
    provider: k8s.Provider
    aws: AwsContext


class ClusterAutoscaler(pulumi.ComponentResource):
    """The autoscaler as a pinned Helm release, with an IRSA role scoped to this cluster's groups."""

    def __init__(self, name: str, args: ClusterAutoscalerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-platform:compute:ClusterAutoscaler", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        role = irsa_role(f"{name}-role", oidc_provider_arn=args.oidc_provider_arn,
                         oidc_issuer_url=args.oidc_issuer_url, namespace=NAMESPACE, service_account=SERVICE_ACCOUNT,
                         parent=self)
        policy = aws.iam.RolePolicy(f"{name}-role", role=role.id, opts=child,
                                    policy=json.dumps(autoscaler_policy(args.cluster_name)))
        values = autoscaler_values(args.cluster_name, args.cluster_version, args.aws.region)
        values["rbac"]["serviceAccount"]["annotations"] = {"eks.amazonaws.com/role-arn": role.arn}
        k8s.helm.v3.Release(
            f"{name}-release", name="cluster-autoscaler", namespace=NAMESPACE, values=values, atomic=True,
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=[policy]),
            **release_args(CLUSTER_AUTOSCALER))
        self.register_outputs({})

