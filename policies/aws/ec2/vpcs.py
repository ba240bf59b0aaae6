"""What the VPC policies share: the VPC resources a stack creates, and the clusters it runs in VPCs it does not."""

from __future__ import annotations

from collections.abc import Iterable

from pulumi_policy import PolicyResource

VPC = "aws:ec2/vpc:Vpc"
SUBNET = "aws:ec2/subnet:Subnet"
CLUSTER = "aws:eks/cluster:Cluster"


def of_type(resources: Iterable[PolicyResource], type_token: str) -> list[PolicyResource]:
    return [r for r in resources if r.resource_type == type_token]


def clusters_in_unmanaged_vpcs(resources: list[PolicyResource]) -> list[PolicyResource]:
    """EKS clusters in a VPC the stack does not create (`network.existingVpcId`): what the program guarantees
    about its own VPC (flow logs, NAT per AZ) cannot be seen, let alone enforced, for those."""
    return of_type(resources, CLUSTER) if not of_type(resources, VPC) else []
