"""Karpenter: launches GPU nodes for pending pods of `provisioner: karpenter` pools, and removes them when idle.

The controller runs on the system node group with an IRSA role scoped to the nodes it launches. Its nodes get a
role of their own, admitted to the cluster by an EC2_LINUX access entry (EKS creates such entries only for the
roles of managed node groups). Spot interruption warnings, rebalance recommendations, scheduled maintenance and
instance state changes reach it through an encrypted SQS queue, so it drains a node before EC2 takes it away.
https://karpenter.sh/docs/getting-started/getting-started-with-karpenter/
https://karpenter.sh/docs/concepts/disruption/#interruption
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra.aws_context import AwsContext
from infra.components.cluster import SYSTEM_NODE_LABELS, node_role
from infra.components.irsa_role import irsa_role
from infra.components.kms_key import CustomerKey, CustomerKeyArgs
from infra.components.network import KARPENTER_DISCOVERY_TAG
from infra.components.team_workspace import namespace_labels
from infra.helm import release_args
from infra.iam_policies import (
    interruption_queue_policy,
    karpenter_controller_policy,
)
from infra.versions import KARPENTER

NAMESPACE = "kube-system"
SERVICE_ACCOUNT = "karpenter"
RELEASE_NAME = "karpenter"
# Where the capacity floor's placeholder pods run, under Pod Security `restricted`.
CAPACITY_NAMESPACE = "aip-capacity"
PLACEHOLDER_PRIORITY_CLASS = "aip-capacity-placeholder"
# Below every real pod (whose priority defaults to 0), so any of them preempts a placeholder.
PLACEHOLDER_PRIORITY = -10
# Karpenter deletes an interruption message once handled; an unhandled one is stale after five minutes anyway.
QUEUE_RETENTION_S = 300

# The events Karpenter acts on, by rule: it cordons and drains the node before EC2 stops or reclaims it.
# https://karpenter.sh/docs/concepts/disruption/#interruption
INTERRUPTION_EVENTS: dict[str, dict[str, list[str]]] = {
    "scheduled-change": {"source": ["aws.health"], "detail-type": ["AWS Health Event"]},
    "spot-interruption": {"source": ["aws.ec2"], "detail-type": ["EC2 Spot Instance Interruption Warning"]},
    "rebalance": {"source": ["aws.ec2"], "detail-type": ["EC2 Instance Rebalance Recommendation"]},
    "state-change": {"source": ["aws.ec2"], "detail-type": ["EC2 Instance State-change Notification"]},
    "reservation-interruption": {"source": ["aws.ec2"],
                                 "detail-type": ["EC2 Capacity Reservation Instance Interruption Warning"]},
}


def interruption_queue_name(cluster_name: str) -> str:
    return f"{cluster_name}-karpenter-interruptions"


def controller_replicas(system_nodes: int) -> int:
    """Two controllers (one leads, one stands by) where the system node group keeps two nodes.

    The chart spreads replicas over nodes with a required anti-affinity: a second replica without a second
    system node would stay Pending, and the atomic release would fail.
    """
    return 2 if system_nodes >= 2 else 1


def karpenter_values(*, cluster_name: str, cluster_endpoint: pulumi.Input[str], queue_name: pulumi.Input[str],
                     region: str, role_arn: pulumi.Input[str], replicas: int) -> dict[str, Any]:
    """Chart values: this cluster's settings, the IRSA role, and a controller pinned to the system node group.

    The chart's container securityContext is fixed (non-root uid 65532, read-only root, no capabilities, no
    privilege escalation); the pod runs with the RuntimeDefault seccomp profile by default and so does the container
    here. ``AWS_REGION`` is set because the nodes' IMDS hop limit of 1 keeps pods from asking the metadata service.
    The chart's affinity keeps the controller off the nodes it launches.
    https://github.com/aws/karpenter-provider-aws/blob/v1.14.1/charts/karpenter/values.yaml
    """
    return {
        "settings": {"clusterName": cluster_name, "clusterEndpoint": cluster_endpoint,
                     "interruptionQueue": queue_name},
        "serviceAccount": {"name": SERVICE_ACCOUNT, "annotations": {"eks.amazonaws.com/role-arn": role_arn}},
        "replicas": replicas,
        "nodeSelector": dict(SYSTEM_NODE_LABELS),
        "controller": {
            "env": [{"name": "AWS_REGION", "value": region}],
            # Karpenter's recommended sizing for a small cluster; the memory limit equals the request so the
            # controller is never the first to be OOM-killed, and the chart passes it to the controller as its
            # soft memory limit.
            "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "1Gi"}},
            "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
        },
    }


@dataclass(frozen=True)
class KarpenterArgs:
    """Args of :class:`Karpenter`.

    Attributes:
        cluster_name: EKS cluster whose nodes Karpenter launches.
        cluster_endpoint: The cluster's API endpoint (nodes join through it).
        cluster_security_group_id: The cluster security group EKS created; Karpenter's nodes join it.
        oidc_provider_arn: The cluster's IAM OIDC provider.
        oidc_issuer_url: The cluster's OIDC issuer.
        volume_key_arn: Customer key of node root volumes (the controller launches volumes encrypted with it).
        system_nodes: Smallest size of the system node group (how many controller replicas can spread).
        provider: Kubernetes provider of the cluster.
        aws: Account, partition and region.
    """

    cluster_name: str
    cluster_endpoint: pulumi.Input[str]
    cluster_security_group_id: pulumi.Input[str]
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer_url: pulumi.Input[str]
    volume_key_arn: pulumi.Input[str]
    system_nodes: int
    provider: k8s.Provider
    aws: AwsContext


class Karpenter(pulumi.ComponentResource):
    """The Karpenter controller as a pinned Helm release, its IAM, its interruption queue and its nodes' identity.

    ``ready`` lists what a pool must wait for: the release (which installs the CRDs), the nodes' access entry, the
    discovery tag on the cluster security group, and the namespace and priority class of the placeholder pods;
    ``node_role_name`` resolves only once the node role holds its policies.
    """

    node_role_name: pulumi.Output[str]
    node_role_arn: pulumi.Output[str]
    interruption_queue: pulumi.Output[str]
    capacity_namespace: str
    placeholder_priority_class: str
    ready: tuple[pulumi.Resource, ...]

    def __init__(self, name: str, args: KarpenterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-platform:compute:Karpenter", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        node_role, node_role_arn, access = self._node_identity(name, args)
        # Nodes are found in the cluster security group by this tag (subnets carry it from the network, or are
        # selected by id in a VPC the stack does not own).
        discovery = aws.ec2.Tag(f"{name}-cluster-sg-discovery", resource_id=args.cluster_security_group_id,
                                key=KARPENTER_DISCOVERY_TAG, value=args.cluster_name, opts=child)
        queue, queue_key = self._interruption_queue(name, args)

        role = irsa_role(f"{name}-controller", oidc_provider_arn=args.oidc_provider_arn,
                         oidc_issuer_url=args.oidc_issuer_url, namespace=NAMESPACE, service_account=SERVICE_ACCOUNT,
                         parent=self)
        ctx = args.aws
        policy = aws.iam.RolePolicy(
            f"{name}-controller", role=role.id, opts=child,
            policy=pulumi.Output.all(ctx.partition, ctx.account_id, node_role_arn, queue.arn, queue_key.arn,
                                     args.volume_key_arn).apply(
                lambda v: json.dumps(karpenter_controller_policy(
                    cluster_name=args.cluster_name, partition=v[0], region=ctx.region, account_id=v[1],
                    node_role_arn=v[2], queue_arn=v[3], queue_key_arn=v[4], volume_key_arn=v[5]))))
        values = karpenter_values(cluster_name=args.cluster_name, cluster_endpoint=args.cluster_endpoint,
                                  queue_name=queue.name, region=ctx.region, role_arn=role.arn,
                                  replicas=controller_replicas(args.system_nodes))
        release = k8s.helm.v3.Release(
            f"{name}-release", name=RELEASE_NAME, namespace=NAMESPACE, values=values, atomic=True,
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=[policy]),
            **release_args(KARPENTER))
        floor = self._capacity_floor(name, args.provider)

        self.node_role_name = node_role
        self.node_role_arn = node_role_arn
        self.interruption_queue = queue.name
        self.capacity_namespace = CAPACITY_NAMESPACE
        self.placeholder_priority_class = PLACEHOLDER_PRIORITY_CLASS
        self.ready = (release, access, discovery, *floor)
        self.register_outputs({"node_role_name": self.node_role_name, "node_role_arn": self.node_role_arn,
                               "interruption_queue": self.interruption_queue})

    def _node_identity(self, name: str, args: KarpenterArgs) -> tuple[pulumi.Output[str], pulumi.Output[str],
                                                                       aws.eks.AccessEntry]:
        """The nodes' role (the policies every node has), and the access entry that lets them join.

        A role of their own: the managed node groups' role already has the entry EKS made for it, and a second
        entry for the same principal is refused. The CNI's policy stays with the CNI's IRSA role.
        https://docs.aws.amazon.com/eks/latest/userguide/creating-access-entries.html
        """
        nodes = node_role(f"{name}-nodes", args.aws.partition, parent=self)
        # The name once the cluster exists: the plain name would let the entry race the cluster's creation.
        cluster = pulumi.Output.from_input(args.cluster_endpoint).apply(lambda _: args.cluster_name)
        # Identified by its principal: a replacement must remove the old entry first.
        access = aws.eks.AccessEntry(f"{name}-nodes", cluster_name=cluster, principal_arn=nodes.role.arn,
                                     type="EC2_LINUX",
                                     opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True))
        return nodes.once_attached(nodes.role.name), nodes.once_attached(nodes.role.arn), access

    def _interruption_queue(self, name: str, args: KarpenterArgs) -> tuple[aws.sqs.Queue, CustomerKey]:
        """The queue EventBridge delivers interruption events to, encrypted with a customer key of its own.

        The key's policy lets EventBridge encrypt what it sends (``grants_for=("events",)``); the controller
        decrypts through SQS. A key of its own, so no other data is readable through EventBridge's grant.
        """
        child = pulumi.ResourceOptions(parent=self)
        key = CustomerKey(f"{name}-interruptions", CustomerKeyArgs(
            alias=interruption_queue_name(args.cluster_name), description="Karpenter's interruption queue",
            aws=args.aws, grants_for=("events",)), opts=child)
        # A fixed name (the chart's settings name it): a replacement must delete the old queue first.
        queue = aws.sqs.Queue(
            f"{name}-interruptions", name=interruption_queue_name(args.cluster_name),
            message_retention_seconds=QUEUE_RETENTION_S, kms_master_key_id=key.arn,
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True))
        rules = {
            event: aws.cloudwatch.EventRule(f"{name}-{event}", event_pattern=json.dumps(pattern),
                                            description=f"Karpenter interruption handling: {pattern['detail-type'][0]}",
                                            opts=child)
            for event, pattern in INTERRUPTION_EVENTS.items()
        }
        aws.sqs.QueuePolicy(
            f"{name}-interruptions", queue_url=queue.url,
            policy=pulumi.Output.all(queue.arn, *[rule.arn for rule in rules.values()]).apply(
                lambda v: json.dumps(interruption_queue_policy(v[0], list(v[1:])))), opts=child)
        for event, rule in rules.items():
            aws.cloudwatch.EventTarget(f"{name}-{event}", rule=rule.name, arn=queue.arn, opts=child)
        return queue, key

    def _capacity_floor(self, name: str, provider: k8s.Provider) -> tuple[pulumi.Resource, ...]:
        """The namespace and priority class of the placeholder pods that keep a pool's minimum of nodes warm.

        ``preemptionPolicy: Never``: a placeholder waits for a node instead of evicting anything.
        https://kubernetes.io/docs/concepts/scheduling-eviction/pod-priority-preemption/#non-preempting-priority-class
        """
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=provider)
        namespace = k8s.core.v1.Namespace(f"{name}-capacity", metadata={
            "name": CAPACITY_NAMESPACE, "labels": namespace_labels(CAPACITY_NAMESPACE)}, opts=k8s_opts)
        priority = k8s.scheduling.v1.PriorityClass(
            f"{name}-placeholder", metadata={"name": PLACEHOLDER_PRIORITY_CLASS}, value=PLACEHOLDER_PRIORITY,
            preemption_policy="Never", global_default=False,
            description="Placeholder pods of the GPU capacity floor: every real pod preempts them.", opts=k8s_opts)
        return namespace, priority
