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
RELEASE_NAME = "cluster-autoscaler"
# The chart names its objects `<cloudProvider>-cluster-autoscaler` and labels them with it and the release.
CHART_APP_NAME = "aws-cluster-autoscaler"
METRICS_PORT_NAME = "http"  # the chart's Service port (8085, the autoscaler's --address)
SCRAPE_INTERVAL = "30s"


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
    """Chart values: auto-discovery of this cluster's groups, least-waste expansion, on system nodes.

    `emit-per-nodegroup-metrics` adds the per-node-group gauges (`cluster_autoscaler_node_group_max_count`,
    `..._target_count`, `..._backoff_status`) that the NodePoolAtMaxSize and NodePoolScaleUpBackoff alerts
    read; without it the autoscaler only exports cluster-wide totals.
    https://github.com/kubernetes/autoscaler/blob/cluster-autoscaler-1.34.0/cluster-autoscaler/metrics/metrics.go
    The chart's own ServiceMonitor stays off: :func:`service_monitor_spec` is created next to the release
    instead, so that installing the autoscaler never waits for the metrics stack (whose pods may need the
    autoscaler to find room).
    https://github.com/kubernetes/autoscaler/blob/cluster-autoscaler-chart-9.59.0/charts/cluster-autoscaler/values.yaml
    """
    return {
        "cloudProvider": "aws",
        "awsRegion": region,
        "autoDiscovery": {"clusterName": cluster_name},
        "image": {"tag": CLUSTER_AUTOSCALER_IMAGE_TAGS[cluster_version]},
        "rbac": {"serviceAccount": {"create": True, "name": SERVICE_ACCOUNT}},
        "extraArgs": {"expander": "least-waste", "balance-similar-node-groups": "true",
                      "skip-nodes-with-system-pods": "false", "emit-per-nodegroup-metrics": "true"},
        "service": {"create": True, "portName": METRICS_PORT_NAME},
        "serviceMonitor": {"enabled": False},
        "nodeSelector": {"ai-platform.io/node-role": "system"},
        "priorityClassName": "system-cluster-critical",
    }


def service_monitor_spec() -> dict[str, Any]:
    """Scrape the autoscaler's metrics through the Service its chart creates (selected by the chart's labels)."""
    return {
        "selector": {"matchLabels": {"app.kubernetes.io/instance": RELEASE_NAME,
                                     "app.kubernetes.io/name": CHART_APP_NAME}},
        "namespaceSelector": {"matchNames": [NAMESPACE]},
        "endpoints": [{"port": METRICS_PORT_NAME, "path": "/metrics", "interval": SCRAPE_INTERVAL}],
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
        monitoring: What installs the ServiceMonitor CRD (the metrics stack); only the ServiceMonitor waits for
            it, not the autoscaler.
    """

    cluster_name: str
    cluster_version: str
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer_url: pulumi.Input[str]
    provider: k8s.Provider
    aws: AwsContext
    monitoring: tuple[pulumi.Resource, ...] = ()


class ClusterAutoscaler(pulumi.ComponentResource):
    """The autoscaler as a pinned Helm release, with an IRSA role scoped to this cluster's groups, and the
    ServiceMonitor that scrapes its metrics."""

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
        release = k8s.helm.v3.Release(
            f"{name}-release", name=RELEASE_NAME, namespace=NAMESPACE, values=values, atomic=True,
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=[policy]),
            **release_args(CLUSTER_AUTOSCALER))
        k8s.apiextensions.CustomResource(
            f"{name}-service-monitor", api_version="monitoring.coreos.com/v1", kind="ServiceMonitor",
            metadata={"name": RELEASE_NAME, "namespace": NAMESPACE}, spec=service_monitor_spec(),
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider,
                                        depends_on=[release, *args.monitoring]))
        self.register_outputs({})

