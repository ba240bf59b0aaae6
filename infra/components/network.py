"""The VPC the cluster runs in: private subnets across AZs with NAT egress, or subnets you bring."""

from __future__ import annotations

import ipaddress
import json
import math
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.aws_context import AwsContext
from infra.config import NetworkConfig, RouteConfig
from infra.iam_policies import vpc_flow_log_trust_policy

# https://karpenter.sh/docs/concepts/nodeclasses/#specsubnetselectorterms
KARPENTER_DISCOVERY_TAG = "karpenter.sh/discovery"


@dataclass(frozen=True)
class SubnetPlan:
    """CIDRs of one AZ's subnets."""

    public: str
    private: str


def plan_subnets(vpc_cidr: str, az_count: int) -> list[SubnetPlan]:
    """Split a VPC into one large private and one small public subnet per AZ.

    Private subnets get most of the space because the VPC CNI gives every pod a VPC address; the
    public subnets only hold NAT gateways and load balancers.
    """
    vpc = ipaddress.ip_network(vpc_cidr)
    private_prefix = vpc.prefixlen + math.ceil(math.log2(az_count + 1))
    blocks = list(vpc.subnets(new_prefix=private_prefix))
    public_prefix = private_prefix + math.ceil(math.log2(az_count)) if az_count > 1 else private_prefix + 1
    public = list(blocks[-1].subnets(new_prefix=public_prefix))
    return [SubnetPlan(public=str(public[i]), private=str(blocks[i])) for i in range(az_count)]


def nat_index(az_index: int, strategy: str) -> int:
    """Which NAT gateway serves the private subnet of ``az_index``."""
    return az_index if strategy == "perAz" else 0


def route_target(route: RouteConfig) -> dict[str, str]:
    """The `aws.ec2.Route` argument that sends ``route`` to its target (a VPN gateway is a ``gateway_id``)."""
    if route.transit_gateway_id:
        return {"transit_gateway_id": route.transit_gateway_id}
    return {"gateway_id": str(route.vpn_gateway_id)}


def route_name(table: str, cidr: str) -> str:
    """``{table}-to-10.100.0.0-16``: named by destination, so editing `network.routes` renames no other route."""
    return f"{table}-to-{cidr.replace('/', '-')}"


def s3_gateway_service(region: str) -> str:
    """The S3 gateway endpoint's service name in ``region``.

    https://docs.aws.amazon.com/vpc/latest/privatelink/vpc-endpoints-s3.html
    """
    return f"com.amazonaws.{region}.s3"


def usable_zones(count: int) -> list[str]:
    """The first ``count`` AZs of the region that EKS can use (Local and Wavelength Zones are opt-in).

    Looked up before any subnet exists, so a region with too few AZs fails cleanly instead of halfway.
    """
    names = aws.get_availability_zones(
        state="available", filters=[{"name": "opt-in-status", "values": ["opt-in-not-required"]}]).names
    if len(names) < count:
        raise pulumi.RunError(f"ai-platform:network.availabilityZones = {count}: the region has only {len(names)} "
                              f"usable availability zones ({', '.join(names)})")
    return sorted(names)[:count]


@dataclass(frozen=True)
class NetworkArgs:
    """Args of :class:`Network`.

    Attributes:
        config: Network section of the stack config.
        cluster_name: Used in subnet tags that tell Kubernetes where load balancers go.
        flow_log_key_arn: KMS key that encrypts the VPC flow log group.
        flow_log_retention_days: Retention of the flow log group.
        aws: Account, partition and region (the S3 endpoint's service and the flow log role's trust).
    """

    config: NetworkConfig
    cluster_name: str
    flow_log_key_arn: pulumi.Input[str]
    flow_log_retention_days: int
    aws: AwsContext


class Network(pulumi.ComponentResource):
    """A VPC: public and private subnets per AZ, NAT gateways, an S3 gateway endpoint, flow logs, a closed default SG.

    Route tables declare no routes inline: each route is an `aws.ec2.Route` of its own, so routes that others add
    to these tables (transit gateway or peering return routes, the S3 endpoint's) are never overwritten.
    A stack deployed with inline routes already has its 0.0.0.0/0 routes: import them once
    (`pulumi import aws:ec2/route:Route <name> <rtb-id>_0.0.0.0/0`) before the first update.
    https://docs.aws.amazon.com/eks/latest/userguide/network-reqs.html
    https://www.pulumi.com/registry/packages/aws/api-docs/ec2/routetable/ (inline routes and Route resources)

    Each gateway that `network.routes` names gets one attachment of this VPC, and the routes through it wait for
    it: EC2 refuses a route to a gateway the VPC is not attached to. What the gateway's owner must do first:

    - Transit gateway: share it with this account through AWS RAM and accept the share (automatic within an
      organization that enabled sharing); accept the attachment unless the transit gateway auto-accepts shared
      attachments; and route the VPC's CIDR back to this attachment in the transit gateway's route table
      (automatic with default route table association and propagation).
      https://docs.aws.amazon.com/vpc/latest/tgw/transit-gateway-share.html
      https://docs.aws.amazon.com/vpc/latest/tgw/tgw-vpc-attachments.html
    - Virtual private gateway: it belongs to this account and to no other VPC (it attaches to one VPC at a time).
      https://docs.aws.amazon.com/vpn/latest/s2svpn/SetUpVPNConnections.html
    """

    vpc_id: pulumi.Output[str]
    private_subnet_ids: pulumi.Output[list[str]]

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-platform:network:Network", name, None, opts)
        cfg = args.config
        if cfg.existing_vpc_id:
            self.vpc_id = pulumi.Output.from_input(cfg.existing_vpc_id)
            self.private_subnet_ids = pulumi.Output.from_input(list(cfg.existing_private_subnet_ids))
        else:
            self._create(name, args)
        self.register_outputs({"vpc_id": self.vpc_id, "private_subnet_ids": self.private_subnet_ids})

    def _create(self, name: str, args: NetworkArgs) -> None:
        cfg = args.config
        child = pulumi.ResourceOptions(parent=self)
        zones = usable_zones(cfg.availability_zones)
        vpc = aws.ec2.Vpc(f"{name}-vpc", cidr_block=cfg.vpc_cidr, enable_dns_hostnames=True,
                          enable_dns_support=True, tags={"Name": name}, opts=child)
        # The default security group allows all traffic between its members; nothing should use it.
        aws.ec2.DefaultSecurityGroup(f"{name}-default-sg", vpc_id=vpc.id, ingress=[], egress=[], opts=child)
        igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, opts=child)
        public_rt = aws.ec2.RouteTable(f"{name}-public", vpc_id=vpc.id, opts=child)
        aws.ec2.Route(f"{name}-public-default", route_table_id=public_rt.id, destination_cidr_block="0.0.0.0/0",
                      gateway_id=igw.id, opts=child)
        cluster_tag = f"kubernetes.io/cluster/{args.cluster_name}"
        nats: list[aws.ec2.NatGateway] = []
        private_ids, private_tables = [], []
        for i, plan in enumerate(plan_subnets(cfg.vpc_cidr, cfg.availability_zones)):
            zone = zones[i]
            public = aws.ec2.Subnet(
                f"{name}-public-{i}", vpc_id=vpc.id, cidr_block=plan.public, availability_zone=zone,
                map_public_ip_on_launch=False,
                tags={"Name": f"{name}-public-{i}", "kubernetes.io/role/elb": "1", cluster_tag: "shared"},
                opts=child)
            aws.ec2.RouteTableAssociation(f"{name}-public-{i}", subnet_id=public.id, route_table_id=public_rt.id,
                                          opts=child)
            if nat_index(i, cfg.nat_gateways) == i:
                eip = aws.ec2.Eip(f"{name}-nat-{i}", domain="vpc", opts=child)
                nats.append(aws.ec2.NatGateway(f"{name}-nat-{i}", allocation_id=eip.id, subnet_id=public.id,
                                               opts=pulumi.ResourceOptions(parent=self, depends_on=[igw])))
            private = aws.ec2.Subnet(
                f"{name}-private-{i}", vpc_id=vpc.id, cidr_block=plan.private, availability_zone=zone,
                tags={"Name": f"{name}-private-{i}", "kubernetes.io/role/internal-elb": "1", cluster_tag: "shared",
                      # Karpenter launches nodes into the subnets that carry this tag.
                      KARPENTER_DISCOVERY_TAG: args.cluster_name},
                opts=child)
            nat = nats[nat_index(i, cfg.nat_gateways)]
            private_rt = aws.ec2.RouteTable(f"{name}-private-{i}", vpc_id=vpc.id, opts=child)
            aws.ec2.Route(f"{name}-private-{i}-default", route_table_id=private_rt.id,
                          destination_cidr_block="0.0.0.0/0", nat_gateway_id=nat.id, opts=child)
            aws.ec2.RouteTableAssociation(f"{name}-private-{i}", subnet_id=private.id,
                                          route_table_id=private_rt.id, opts=child)
            private_ids.append(private.id)
            private_tables.append(private_rt.id)
        attachments = self._attachments(name, vpc, private_ids, cfg.routes)
        for i, table_id in enumerate(private_tables):
            for route in cfg.routes:
                # Other private networks (CI, VPN) and the replies to them: never through the NAT gateway.
                aws.ec2.Route(route_name(f"{name}-private-{i}", route.cidr), route_table_id=table_id,
                              destination_cidr_block=route.cidr, **route_target(route),
                              opts=pulumi.ResourceOptions(parent=self, depends_on=[attachments[route.gateway_id]]))
        # Model pulls and log snapshots reach S3 through the endpoint: no NAT data-processing charge, no internet.
        aws.ec2.VpcEndpoint(f"{name}-s3", vpc_id=vpc.id, service_name=s3_gateway_service(args.aws.region),
                            vpc_endpoint_type="Gateway", route_table_ids=private_tables, opts=child)
        self._flow_logs(name, vpc, args)
        self.vpc_id = vpc.id
        self.private_subnet_ids = pulumi.Output.all(*private_ids)

    def _attachments(self, name: str, vpc: aws.ec2.Vpc, private_subnet_ids: list[pulumi.Output[str]],
                     routes: tuple[RouteConfig, ...]) -> dict[str, pulumi.Resource]:
        """One attachment of the VPC to each gateway the routes go through, by gateway id."""
        child = pulumi.ResourceOptions(parent=self)
        attachments: dict[str, pulumi.Resource] = {}
        for route in routes:
            gateway = route.gateway_id
            if gateway in attachments:
                continue
            if route.transit_gateway_id:
                # One subnet per AZ, as AWS requires: traffic from an AZ without one cannot reach the transit
                # gateway, and the private subnets hold the cluster endpoint's network interfaces. Default route
                # table association and propagation are left to the owner: they cannot be set on a shared one.
                # https://docs.aws.amazon.com/vpc/latest/tgw/tgw-vpc-attachments.html
                attachments[gateway] = aws.ec2transitgateway.VpcAttachment(
                    f"{name}-{gateway}", transit_gateway_id=gateway, vpc_id=vpc.id, subnet_ids=private_subnet_ids,
                    dns_support="enable", tags={"Name": f"{name}-{gateway}"}, opts=child)
            else:
                # https://docs.aws.amazon.com/vpn/latest/s2svpn/SetUpVPNConnections.html
                attachments[gateway] = aws.ec2.VpnGatewayAttachment(
                    f"{name}-{gateway}", vpc_id=vpc.id, vpn_gateway_id=gateway, opts=child)
        return attachments

    def _flow_logs(self, name: str, vpc: aws.ec2.Vpc, args: NetworkArgs) -> None:
        child = pulumi.ResourceOptions(parent=self)
        group = aws.cloudwatch.LogGroup(f"{name}-flow-logs", retention_in_days=args.flow_log_retention_days,
                                        kms_key_id=args.flow_log_key_arn, opts=child)
        trust = pulumi.Output.all(args.aws.account_id, args.aws.partition).apply(
            lambda v: json.dumps(vpc_flow_log_trust_policy(v[0], v[1], args.aws.region)))
        role = aws.iam.Role(f"{name}-flow-logs", assume_role_policy=trust, opts=child)
        aws.iam.RolePolicy(f"{name}-flow-logs", role=role.id, policy=group.arn.apply(lambda arn: json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow",
                           "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                           "Resource": f"{arn}:*"}],
        })), opts=child)
        aws.ec2.FlowLog(f"{name}-flow-logs", vpc_id=vpc.id, traffic_type="ALL", log_destination=group.arn,
                        log_destination_type="cloud-watch-logs", iam_role_arn=role.arn, opts=child)
