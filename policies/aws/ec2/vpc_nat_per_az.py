"""aws-ec2-vpc-nat-per-az: private subnets keep their egress when one availability zone fails."""

from __future__ import annotations

from pulumi_policy import (
    PolicyConfigSchema,
    ReportViolation,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)

from policies.aws.ec2.vpcs import SUBNET, clusters_in_unmanaged_vpcs, of_type
from policies.frameworks import ISO27001, SOC2, platform_baseline
from policies.props import config_value, get, truthy

NAT_GATEWAY = "aws:ec2/natGateway:NatGateway"
PRIVATE_SUBNET_TAG = "kubernetes.io/role/internal-elb"


def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    if not truthy(config_value(args, "requireNatPerAz", True)):
        return
    for cluster in clusters_in_unmanaged_vpcs(args.resources):
        report_violation(f"EKS cluster '{cluster.name}' runs in a VPC this stack does not create, so a NAT gateway "
                         "per availability zone cannot be verified; give each private subnet's AZ its own NAT "
                         "gateway and waive this with their ids.", cluster.urn)
    zones = {str(get(s.props, "availabilityZone")) for s in of_type(args.resources, SUBNET)
             if get(s.props, "tags", PRIVATE_SUBNET_TAG) is not None}
    nats = of_type(args.resources, NAT_GATEWAY)
    if zones and len(nats) < len(zones):
        report_violation(f"{len(nats)} NAT gateway(s) serve private subnets in {len(zones)} availability zones "
                         f"({', '.join(sorted(zones))}): losing one zone cuts the others' egress.")


aws_ec2_vpc_nat_per_az = StackValidationPolicy(
    name="aws-ec2-vpc-nat-per-az",
    description="Private subnets get a NAT gateway in each of their availability zones (config requireNatPerAz); "
                "a cluster in a VPC the stack does not create is flagged, since this cannot be verified.",
    validate=validate,
    config_schema=PolicyConfigSchema(properties={"requireNatPerAz": {"type": "boolean", "default": True}}),
    severity=Severity.MEDIUM,
    framework=platform_baseline("nat-per-az"),
    tags=["aws", "ec2", "network", "availability", SOC2, ISO27001],
    remediation_steps="Set network.natGateways: perAz in stacks/Pulumi.<stack>.yaml, or, with an existing VPC, give "
                      "each AZ its own NAT gateway and record a waiver.",
    url="https://docs.aws.amazon.com/vpc/latest/userguide/nat-gateway-basics.html",
)
