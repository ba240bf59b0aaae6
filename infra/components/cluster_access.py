"""Who besides its creator may use the cluster: EKS access entries from the platform config.

The cluster authenticates with access entries only (authentication mode `API`); EKS gives its creator
cluster-admin at creation. Every other principal (a second CI role, operators, auditors) needs an entry
here, or it gets 401 on every call. Teams' CI principals get theirs from their TeamWorkspace.
https://docs.aws.amazon.com/eks/latest/userguide/access-entries.html
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.config.teams import ACCESS_POLICIES, AccessEntryConfig


def access_policy_arn(partition: str, access_policy: str) -> str:
    """ARN of an EKS access policy (``clusterAdmin`` -> ``...:cluster-access-policy/AmazonEKSClusterAdminPolicy``)."""
    return f"arn:{partition}:eks::aws:cluster-access-policy/{ACCESS_POLICIES[access_policy]}"


def access_scope(entry: AccessEntryConfig) -> dict[str, Any]:
    """The whole cluster, or only the namespaces the entry names."""
    if entry.namespaces:
        return {"type": "namespace", "namespaces": list(entry.namespaces)}
    return {"type": "cluster"}


def entry_suffix(principal_arn: str) -> str:
    """A stable resource-name suffix for a principal: readable, and unique (``role/ops.admin`` and
    ``role/ops-admin`` read the same, so a digest of the whole ARN follows)."""
    readable = re.sub(r"[^a-z0-9]+", "-", principal_arn.split(":", 5)[-1].lower()).strip("-")
    return f"{readable}-{hashlib.sha256(principal_arn.encode()).hexdigest()[:8]}"


@dataclass(frozen=True)
class ClusterAccessArgs:
    """Args of :class:`ClusterAccess`.

    Attributes:
        entries: The `cluster.accessEntries` of the stack config.
        cluster_name: The EKS cluster.
        partition: AWS partition (access policy ARNs carry it).
    """

    entries: tuple[AccessEntryConfig, ...]
    cluster_name: pulumi.Input[str]
    partition: pulumi.Input[str]


class ClusterAccess(pulumi.ComponentResource):
    """One access entry per configured principal, with its EKS access policy at cluster or namespace scope."""

    def __init__(self, name: str, args: ClusterAccessArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-platform:cluster:ClusterAccess", name, None, opts)
        # An entry and its policy association are identified by principal (and policy): a replacement must
        # remove the old one first, or deleting it afterwards takes the principal's new access away.
        child = pulumi.ResourceOptions(parent=self, delete_before_replace=True)
        for entry in args.entries:
            suffix = entry_suffix(entry.principal_arn)
            created = aws.eks.AccessEntry(f"{name}-{suffix}", cluster_name=args.cluster_name,
                                          principal_arn=entry.principal_arn, type="STANDARD", opts=child)
            aws.eks.AccessPolicyAssociation(
                f"{name}-{suffix}", cluster_name=args.cluster_name, principal_arn=created.principal_arn,
                policy_arn=pulumi.Output.from_input(args.partition).apply(
                    lambda p, policy=entry.access_policy: access_policy_arn(p, policy)),
                access_scope=access_scope(entry), opts=child)
        self.register_outputs({})
