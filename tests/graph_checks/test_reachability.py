"""Check "reachability": every allowed private network gets through the security group and gets replies back."""

from __future__ import annotations

import pytest

from infra.graph_checks import Finding, ResourceGraph
from infra.graph_checks.graph import EKS_CLUSTER
from infra.graph_checks.reachability import (
    INGRESS_RULE,
    PEERING_CONNECTION,
    ROUTE,
    ROUTE_TABLE,
    ROUTE_TABLE_ASSOCIATION,
    SECURITY_GROUP_RULE,
    TGW_ATTACHMENT,
    VPC,
    VPN_GATEWAY_ATTACHMENT,
    admits_api_traffic,
    check,
    connection_of,
    covers,
    route_back,
)
from tests.graph_checks.conftest import STACKS, TEAM_STACKS, named, record, seeded, with_inputs, with_options

NO_RULE = ("no ingress rule on the cluster security group admits TCP 443 from {cidr} (cluster.privateAccessCidrs): "
           "its deploys cannot reach the private endpoint")
NO_ROUTE = ("no route sends replies to {cidr} (cluster.privateAccessCidrs) through a transit gateway, VPC peering "
            "connection or VPN gateway: add one in network.routes")
NOT_CONNECTED = ("the route to {cidr} goes through {kind} {target}, but the stack does not {missing} (no {type}): EC2 "
                 "refuses the route on the first deploy")
NOT_WAITING = ("the route to {cidr} through {kind} {target} does not wait for {names} ({type}): `pulumi up` may "
               "create the route first, and EC2 refuses it until the VPC is connected")
TGW = "tgw-0a1b2c3d4e5f60718"
VGW = "vgw-0a1b2c3d4e5f60718"


# -- pure functions ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("outer", "inner", "expected"), [
    ("10.0.0.0/8", "10.100.0.0/16", True),
    ("10.100.0.0/16", "10.100.0.0/16", True),
    ("10.100.0.0/16", "10.0.0.0/8", False),
    ("0.0.0.0/0", "172.20.0.0/22", True),
    ("10.64.0.0/16", "10.65.0.0/16", False),
    ("::/0", "10.0.0.0/8", False),  # another address family
    ("not-a-cidr", "10.0.0.0/8", False),
])
def test_covers(outer, inner, expected):
    assert covers(outer, inner) is expected


API = {"type": "ingress", "protocol": "tcp", "fromPort": 443.0, "toPort": 443.0, "cidrBlocks": ["10.100.0.0/16"]}


@pytest.mark.parametrize(("rule_type", "rule", "expected"), [
    (SECURITY_GROUP_RULE, API, True),
    (SECURITY_GROUP_RULE, {**API, "cidrBlocks": ["10.0.0.0/8"]}, True),
    (SECURITY_GROUP_RULE, {**API, "fromPort": 0, "toPort": 65535}, True),
    (SECURITY_GROUP_RULE, {**API, "protocol": "6"}, True),
    (SECURITY_GROUP_RULE, {**API, "protocol": "-1", "fromPort": 0, "toPort": 0}, True),
    (SECURITY_GROUP_RULE, {**API, "type": "egress"}, False),
    (SECURITY_GROUP_RULE, {**API, "protocol": "udp"}, False),
    (SECURITY_GROUP_RULE, {**API, "fromPort": 22, "toPort": 22}, False),
    (SECURITY_GROUP_RULE, {**API, "cidrBlocks": ["10.100.0.0/24"]}, False),  # only part of the network
    (SECURITY_GROUP_RULE, {**API, "cidrBlocks": [], "sourceSecurityGroupId": "sg-1"}, False),
    (INGRESS_RULE, {"ipProtocol": "tcp", "fromPort": 443, "toPort": 443, "cidrIpv4": "10.100.0.0/16"}, True),
    (INGRESS_RULE, {"ipProtocol": "-1", "cidrIpv4": "10.0.0.0/8"}, True),
    (INGRESS_RULE, {"ipProtocol": "tcp", "fromPort": 80, "toPort": 80, "cidrIpv4": "10.100.0.0/16"}, False),
    (INGRESS_RULE, {"ipProtocol": "tcp", "fromPort": 443, "toPort": 443, "referencedSecurityGroupId": "sg-1"},
     False),
])
def test_admits_api_traffic(rule_type, rule, expected):
    assert admits_api_traffic(rule, rule_type, "10.100.0.0/16") is expected


@pytest.mark.parametrize(("route", "expected"), [
    ({"destinationCidrBlock": "10.100.0.0/16", "transitGatewayId": "tgw-0a1b2c3d4e5f60718"}, True),
    ({"destinationCidrBlock": "10.0.0.0/8", "vpcPeeringConnectionId": "pcx-0a1b2c3d4e5f60718"}, True),
    ({"destinationCidrBlock": "10.100.0.0/16", "gatewayId": "vgw-0a1b2c3d4e5f60718"}, True),
    ({"cidrBlock": "10.100.0.0/16", "transitGatewayId": "tgw-0a1b2c3d4e5f60718"}, True),  # inline route
    ({"destinationCidrBlock": "0.0.0.0/0", "natGatewayId": "nat-0a1b2c3d4e5f60718"}, False),
    ({"destinationCidrBlock": "10.100.0.0/16", "gatewayId": "igw-0a1b2c3d4e5f60718"}, False),
    ({"destinationCidrBlock": "10.100.0.0/24", "transitGatewayId": "tgw-0a1b2c3d4e5f60718"}, False),
    ({"destinationCidrBlock": "10.100.0.0/16"}, False),
])
def test_route_back(route, expected):
    assert route_back(route, "10.100.0.0/16") is expected


@pytest.mark.parametrize(("route", "expected"), [
    ({"transitGatewayId": TGW}, (TGW_ATTACHMENT, TGW)),
    ({"gatewayId": VGW}, (VPN_GATEWAY_ATTACHMENT, VGW)),
    ({"vpcPeeringConnectionId": "pcx-0a1b2c3d4e5f60718"}, (PEERING_CONNECTION, "pcx-0a1b2c3d4e5f60718")),
    ({"gatewayId": "igw-0a1b2c3d4e5f60718"}, None),  # needs no connection, and carries no private traffic
    ({"natGatewayId": "nat-0a1b2c3d4e5f60718"}, None),
])
def test_each_private_target_needs_its_connection(route, expected):
    found = connection_of(route)
    assert (found if found is None else (found[0].resource_type, found[1])) == expected


# -- shipped stacks -------------------------------------------------------------------------------------------

@pytest.mark.integration
@pytest.mark.parametrize("stack", STACKS)
def test_shipped_stack_is_reachable_from_its_private_networks(stack, preview, stack_config):
    assert check(ResourceGraph(preview(stack)), stack_config(stack)) == []


@pytest.mark.parametrize("stack", TEAM_STACKS)
def test_team_stacks_have_nothing_to_reach(stack, preview, stack_config):
    assert check(ResourceGraph(preview(stack)), stack_config(stack)) == []


# -- seeded defects in a real preview -------------------------------------------------------------------------

@pytest.fixture
def dev(preview, stack_config):
    """The dev preview and config, its first private network outside the VPC, and what the check finds today."""
    result, config = preview("dev"), stack_config("dev")
    outside = [c for c in config.cluster.private_access_cidrs if not covers(config.network.vpc_cidr, c)]
    assert outside, "dev must list a private network outside its VPC in cluster.privateAccessCidrs"
    return result, config, outside[0], set(check(ResourceGraph(result), config))


def _rule_for(result, cidr):
    return next(r for r in result.resources if r.type in (SECURITY_GROUP_RULE, INGRESS_RULE)
                and cidr in (*(r.inputs.get("cidrBlocks") or []), r.inputs.get("cidrIpv4")))


def _private_table(result):
    return named(result, ROUTE_TABLE, "aip-dev-network-private-0")


def _table_id(result, table):
    return next(a.inputs["routeTableId"] for a in result.resources if a.type == ROUTE_TABLE_ASSOCIATION
                and table.urn in a.options["dependsOn"])


def _cluster(result):
    return next(r for r in result.resources if r.type == EKS_CLUSTER)


def test_missing_api_rule_is_found(dev):
    result, config, cidr, baseline = dev
    broken = seeded(result, drop=[_rule_for(result, cidr).urn])
    assert set(check(ResourceGraph(broken), config)) - baseline == {
        Finding("reachability", _cluster(result).urn, NO_RULE.format(cidr=cidr))}


@pytest.mark.parametrize("change", [
    {"securityGroupId": "sg-00000000000000000"},  # another security group than the cluster's
    {"fromPort": 22, "toPort": 22},
    {"type": "egress"},
], ids=["other-group", "other-port", "egress"])
def test_api_rule_that_does_not_admit_the_network_is_found(dev, change):
    result, config, cidr, baseline = dev
    rule = _rule_for(result, cidr)
    broken = seeded(result, replace=[with_inputs(rule, **change)])
    assert set(check(ResourceGraph(broken), config)) - baseline == {
        Finding("reachability", _cluster(result).urn, NO_RULE.format(cidr=cidr))}


def test_missing_return_route_is_found(dev):
    result, config, cidr, baseline = dev
    table = _private_table(result)
    table_id = _table_id(result, table)
    routes = [r for r in result.resources if r.type == ROUTE and r.inputs.get("routeTableId") == table_id
              and route_back(r.inputs, cidr)]
    assert routes, f"the dev preview routes {cidr} from {table.name}"
    broken = seeded(result, drop=[r.urn for r in routes])
    assert set(check(ResourceGraph(broken), config)) - baseline == {
        Finding("reachability", table.urn, NO_ROUTE.format(cidr=cidr))}


def test_return_route_through_the_nat_gateway_is_found(dev):
    result, config, cidr, baseline = dev
    table = _private_table(result)
    table_id = _table_id(result, table)
    routes = [r for r in result.resources if r.type == ROUTE and r.inputs.get("routeTableId") == table_id
              and route_back(r.inputs, cidr)]
    broken = seeded(result, replace=[with_inputs(r, transitGatewayId=None, vpcPeeringConnectionId=None,
                                                 gatewayId=None, natGatewayId="nat-0a1b2c3d4e5f60718")
                                     for r in routes])
    assert set(check(ResourceGraph(broken), config)) - baseline == {
        Finding("reachability", table.urn, NO_ROUTE.format(cidr=cidr))}


def test_private_subnet_without_its_route_table_is_found(dev):
    result, config, _, baseline = dev
    table = _private_table(result)
    association = next(a for a in result.resources if a.type == ROUTE_TABLE_ASSOCIATION
                       and table.urn in a.options["dependsOn"])
    outside = [c for c in config.cluster.private_access_cidrs if not covers(config.network.vpc_cidr, c)]
    broken = seeded(result, drop=[association.urn])
    assert set(check(ResourceGraph(broken), config)) - baseline == {Finding(
        "reachability", _cluster(result).urn,
        f"the cluster's subnet {association.inputs['subnetId']} has no route table association: replies to "
        f"{', '.join(outside)} would follow the VPC's main route table")}


def test_private_endpoint_without_allowed_networks_is_found(dev):
    result, config, _, _ = dev
    closed = config.model_copy(update={"cluster": config.cluster.model_copy(update={"private_access_cidrs": ()})})
    assert check(ResourceGraph(result), closed) == [Finding(
        "reachability", "ai-platform:cluster.privateAccessCidrs",
        "the cluster endpoint is private and no network may reach it: list the VPN or CI networks that deploy to it "
        "in cluster.privateAccessCidrs")]


def test_public_endpoint_needs_no_private_network(dev):
    result, config, _, _ = dev
    cluster = _cluster(result)
    public = seeded(result, replace=[with_inputs(cluster, vpcConfig={**cluster.inputs["vpcConfig"],
                                                                     "endpointPublicAccess": True})])
    closed = config.model_copy(update={"cluster": config.cluster.model_copy(update={"private_access_cidrs": ()})})
    assert check(ResourceGraph(public), closed) == []


def test_routes_of_an_existing_vpc_are_its_owners(dev):
    result, config, _, baseline = dev
    # No VPC of our own and none of its routes: the security group rules still count, the routes do not.
    without = seeded(result, drop=[r.urn for r in result.resources if r.type in (VPC, ROUTE)])
    assert set(check(ResourceGraph(without), config)) - baseline == set()


# -- seeded defects: a route to a target the VPC is not connected to --------------------------------------------

def _transit_routes(result, config):
    """The dev routes back to networks outside the VPC, all through the transit gateway."""
    outside = [c for c in config.cluster.private_access_cidrs if not covers(config.network.vpc_cidr, c)]
    routes = [r for r in result.resources if r.type == ROUTE and r.inputs.get("destinationCidrBlock") in outside]
    assert routes and all(r.inputs.get("transitGatewayId") == TGW for r in routes)
    return routes


@pytest.mark.parametrize("defect", ["dropped", "other-vpc", "other-gateway"])
def test_route_to_a_transit_gateway_the_vpc_is_not_attached_to_is_found(dev, defect):
    result, config, _, baseline = dev
    attachment = next(r for r in result.resources if r.type == TGW_ATTACHMENT)
    broken = seeded(result, drop=[attachment.urn]) if defect == "dropped" else seeded(result, replace=[with_inputs(
        attachment, **({"vpcId": "vpc-00000000000000000"} if defect == "other-vpc"
                       else {"transitGatewayId": "tgw-00000000000000000"}))])
    assert set(check(ResourceGraph(broken), config)) - baseline == {
        Finding("reachability", r.urn, NOT_CONNECTED.format(
            cidr=r.inputs["destinationCidrBlock"], kind="transit gateway", target=TGW,
            missing="attach this VPC to it", type=TGW_ATTACHMENT))
        for r in _transit_routes(result, config)}


def test_route_that_does_not_wait_for_its_attachment_is_found(dev):
    result, config, _, baseline = dev
    attachment = next(r for r in result.resources if r.type == TGW_ATTACHMENT)
    route = _transit_routes(result, config)[0]
    assert attachment.urn in route.options["dependsOn"]
    hasty = with_options(route, dependsOn=[u for u in route.options["dependsOn"] if u != attachment.urn])
    assert set(check(ResourceGraph(seeded(result, replace=[hasty])), config)) - baseline == {
        Finding("reachability", route.urn, NOT_WAITING.format(
            cidr=route.inputs["destinationCidrBlock"], kind="transit gateway", target=TGW, names=attachment.name,
            type=TGW_ATTACHMENT))}


def _through_vgw(result, config):
    """The dev routes back, moved to a virtual private gateway, and the VPC they belong to."""
    vpc = _private_table(result).inputs["vpcId"]
    return [with_inputs(r, transitGatewayId=None, gatewayId=VGW) for r in _transit_routes(result, config)], vpc


def test_route_to_a_vpn_gateway_the_vpc_is_not_attached_to_is_found(dev):
    result, config, _, baseline = dev
    routes, _ = _through_vgw(result, config)
    assert set(check(ResourceGraph(seeded(result, replace=routes)), config)) - baseline == {
        Finding("reachability", r.urn, NOT_CONNECTED.format(
            cidr=r.inputs["destinationCidrBlock"], kind="virtual private gateway", target=VGW,
            missing="attach this VPC to it", type=VPN_GATEWAY_ATTACHMENT))
        for r in routes}


def test_route_to_an_attached_vpn_gateway_counts_once_it_waits_for_the_attachment(dev):
    result, config, _, baseline = dev
    routes, vpc = _through_vgw(result, config)
    attachment = record(VPN_GATEWAY_ATTACHMENT, "aip-dev-network-vgw", inputs={"vpcId": vpc, "vpnGatewayId": VGW})
    waiting = [with_options(r, dependsOn=[*r.options["dependsOn"], attachment.urn]) for r in routes]
    assert set(check(ResourceGraph(seeded(result, replace=waiting, add=[attachment])), config)) - baseline == set()
    hasty = seeded(result, replace=[*waiting[1:], routes[0]], add=[attachment])
    assert set(check(ResourceGraph(hasty), config)) - baseline == {
        Finding("reachability", routes[0].urn, NOT_WAITING.format(
            cidr=routes[0].inputs["destinationCidrBlock"], kind="virtual private gateway", target=VGW,
            names=attachment.name, type=VPN_GATEWAY_ATTACHMENT))}


def test_route_to_a_peering_connection_the_stack_does_not_create_is_found(dev):
    result, config, _, baseline = dev
    pcx = "pcx-0a1b2c3d4e5f60718"
    routes = [with_inputs(r, transitGatewayId=None, vpcPeeringConnectionId=pcx)
              for r in _transit_routes(result, config)]
    assert set(check(ResourceGraph(seeded(result, replace=routes)), config)) - baseline == {
        Finding("reachability", r.urn, NOT_CONNECTED.format(
            cidr=r.inputs["destinationCidrBlock"], kind="VPC peering connection", target=pcx,
            missing="create it with this VPC", type=PEERING_CONNECTION))
        for r in routes}
