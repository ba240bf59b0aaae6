"""Availability and network evidence: spot GPU pools, NAT per AZ, flow logs, VPCs the stack does not own."""

from __future__ import annotations

from policies.aws.ec2.vpc_flow_logs import FLOW_LOG, aws_ec2_vpc_flow_logs
from policies.aws.ec2.vpc_nat_per_az import NAT_GATEWAY, aws_ec2_vpc_nat_per_az
from policies.aws.ec2.vpcs import CLUSTER, SUBNET, VPC
from policies.aws.eks.nodegroup_gpu_on_demand import aws_eks_nodegroup_gpu_on_demand
from policies.aws.eks.nodegroups import NODE_GROUP
from tests.policies.support import DELETE, mutate, resource, validate_resource, validate_stack
from tests.policies.test_aws_compute import EKS_CLUSTER, GPU_NODE_GROUP, SYSTEM_NODE_GROUP

PRIVATE = {"kubernetes.io/role/internal-elb": "1"}


def network(zones: int = 3, nats: int = 3, flow_logs: int = 1) -> list:
    """A stack's own VPC: private subnets in ``zones`` AZs, ``nats`` NAT gateways, ``flow_logs`` flow logs."""
    found = [resource(VPC, "vpc", {"cidrBlock": "10.66.0.0/16"}),
             resource(CLUSTER, "cluster", EKS_CLUSTER)]
    found += [resource(SUBNET, f"private-{i}", {"availabilityZone": f"us-east-1{'abc'[i]}", "tags": PRIVATE})
              for i in range(zones)]
    found += [resource(SUBNET, f"public-{i}", {"availabilityZone": f"us-east-1{'abc'[i]}", "tags": {}})
              for i in range(zones)]
    found += [resource(NAT_GATEWAY, f"nat-{i}", {"subnetId": f"subnet-{i}"}) for i in range(nats)]
    found += [resource(FLOW_LOG, f"flow-{i}", {"trafficType": "ALL"}) for i in range(flow_logs)]
    return found


def existing_vpc() -> list:
    """`network.existingVpcId`: the cluster, and nothing of the network."""
    return [resource(CLUSTER, "cluster", EKS_CLUSTER)]


def test_on_demand_gpu_pools_pass_and_spot_is_refused_unless_allowed():
    assert validate_resource(aws_eks_nodegroup_gpu_on_demand, NODE_GROUP, GPU_NODE_GROUP) == []
    spot = mutate(GPU_NODE_GROUP, "capacityType", "SPOT")
    assert validate_resource(aws_eks_nodegroup_gpu_on_demand, NODE_GROUP, spot) == [
        "GPU node group 'res' uses SPOT capacity: EC2 may reclaim its nodes with two minutes' notice, taking "
        "serving replicas down; use ON_DEMAND here."]
    assert validate_resource(aws_eks_nodegroup_gpu_on_demand, NODE_GROUP, spot, config={"allowSpot": True}) == []
    # System nodes are not GPU pools; an unset capacity type is ON_DEMAND.
    assert validate_resource(aws_eks_nodegroup_gpu_on_demand, NODE_GROUP,
                             mutate(SYSTEM_NODE_GROUP, "capacityType", "SPOT")) == []
    assert validate_resource(aws_eks_nodegroup_gpu_on_demand, NODE_GROUP,
                             mutate(GPU_NODE_GROUP, "capacityType", DELETE)) == []


def test_a_nat_gateway_per_zone_passes_and_fewer_are_refused():
    assert validate_stack(aws_ec2_vpc_nat_per_az, network()) == []
    assert validate_stack(aws_ec2_vpc_nat_per_az, network(nats=1)) == [
        "1 NAT gateway(s) serve private subnets in 3 availability zones (us-east-1a, us-east-1b, us-east-1c): "
        "losing one zone cuts the others' egress."]
    assert validate_stack(aws_ec2_vpc_nat_per_az, network(nats=1), config={"requireNatPerAz": False}) == []


def test_flow_logs_pass_and_a_vpc_without_one_is_refused():
    assert validate_stack(aws_ec2_vpc_flow_logs, network()) == []
    assert validate_stack(aws_ec2_vpc_flow_logs, network(flow_logs=0)) == [
        "VPC 'vpc' has no flow log recording ALL traffic."]
    rejected_only = [*network(flow_logs=0), resource(FLOW_LOG, "rejects", {"trafficType": "REJECT"})]
    assert validate_stack(aws_ec2_vpc_flow_logs, rejected_only) == ["VPC 'vpc' has no flow log recording ALL traffic."]


def test_an_existing_vpc_is_flagged_for_what_the_program_cannot_guarantee():
    assert validate_stack(aws_ec2_vpc_flow_logs, existing_vpc()) == [
        "EKS cluster 'cluster' runs in a VPC this stack does not create, so its flow logs cannot be verified; enable "
        "flow logs (traffic ALL) on that VPC and waive this with the flow log's id."]
    assert validate_stack(aws_ec2_vpc_nat_per_az, existing_vpc()) == [
        "EKS cluster 'cluster' runs in a VPC this stack does not create, so a NAT gateway per availability zone "
        "cannot be verified; give each private subnet's AZ its own NAT gateway and waive this with their ids."]
