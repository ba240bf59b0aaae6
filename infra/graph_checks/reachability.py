"""Check "reachability": the networks allowed to reach a private cluster endpoint can actually reach it.

A private-only endpoint answers only inside the VPC. A deploy (`pulumi up` from CI, `kubectl` from a VPN)
reaches it when two things hold: the cluster security group admits TCP 443 from the caller's network, and
the subnets holding the endpoint's network interfaces route replies back to that network through private
transport (a transit gateway, VPC peering or a VPN gateway; a NAT or internet gateway does not carry
private traffic back).

Such a route is created only once the VPC is connected to its target: EC2 refuses a route to a transit gateway
or virtual private gateway the VPC is not attached to, and to a peering connection that does not exist yet. In a
VPC the stack creates, a route counts only when the stack also creates that connection (the VPC's attachment, or
the peering connection) and the route waits for it.

https://docs.aws.amazon.com/eks/latest/userguide/cluster-endpoint.html#private-access
https://docs.aws.amazon.com/vpc/latest/tgw/tgw-vpc-attachments.html
https://docs.aws.amazon.com/vpn/latest/s2svpn/SetUpVPNConnections.html
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from infra.config import PlatformConfig, StackConfig
from infra.config.reachability import covers
from infra.graph_checks.findings import Finding
from infra.graph_checks.graph import EKS_CLUSTER, ResourceGraph, lookup
from infra.preview.runner import ResourceRecord

CHECK = "reachability"
API_PORT = 443
SECURITY_GROUP_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
VPC = "aws:ec2/vpc:Vpc"
ROUTE = "aws:ec2/route:Route"
ROUTE_TABLE = "aws:ec2/routeTable:RouteTable"
ROUTE_TABLE_ASSOCIATION = "aws:ec2/routeTableAssociation:RouteTableAssociation"
# Route targets that carry traffic to another private network, by the input (engine name) that holds them.
# A VPN gateway is given as a route's gatewayId, which it shares with internet gateways: only vgw- ids count.
PRIVATE_TARGETS = {"transitGatewayId": "", "vpcPeeringConnectionId": "", "gatewayId": "vgw-"}
TGW_ATTACHMENT = "aws:ec2transitgateway/vpcAttachment:VpcAttachment"
VPN_GATEWAY_ATTACHMENT = "aws:ec2/vpnGatewayAttachment:VpnGatewayAttachment"
PEERING_CONNECTION = "aws:ec2/vpcPeeringConnection:VpcPeeringConnection"
_ALL_PROTOCOLS = ("-1", "all")


@dataclass(frozen=True)
class Connection:
    """What connects a VPC to one kind of route target, so that routes to it can be created.

    Attributes:
        key: The route input that names the target.
        kind: The target's kind, in findings.
        resource_type: The resource type that connects the VPC to it.
        missing: What the stack does not do when no such resource exists, in findings.
        connects: Whether a connection's inputs connect VPC ``vpc`` (its id, None when unknown) to target ``target``.
    """

    key: str
    kind: str
    resource_type: str
    missing: str
    connects: Callable[[Mapping[str, Any], str, str | None], bool]


def _same_vpc(inputs: Mapping[str, Any], vpc: str | None) -> bool:
    return vpc is None or inputs.get("vpcId") == vpc


CONNECTIONS = (
    Connection("transitGatewayId", "transit gateway", TGW_ATTACHMENT, "attach this VPC to it",
               lambda c, target, vpc: c.get("transitGatewayId") == target and _same_vpc(c, vpc)),
    Connection("gatewayId", "virtual private gateway", VPN_GATEWAY_ATTACHMENT, "attach this VPC to it",
               lambda c, target, vpc: c.get("vpnGatewayId") == target and _same_vpc(c, vpc)),
    # A peering connection's id exists only once it is created: the route's dependency on it is what ties them.
    Connection("vpcPeeringConnectionId", "VPC peering connection", PEERING_CONNECTION, "create it with this VPC",
               lambda c, _, vpc: vpc is None or vpc in (c.get("vpcId"), c.get("peerVpcId"))),
)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def admits_api_traffic(rule: Mapping[str, Any], rule_type: str, cidr: str) -> bool:
    """Whether one security group rule's inputs admit TCP 443 from all of ``cidr``."""
    if rule_type == SECURITY_GROUP_RULE:
        if rule.get("type") != "ingress":
            return False
        protocol = str(rule.get("protocol", "")).lower()
        sources = [*(rule.get("cidrBlocks") or []), *(rule.get("ipv6CidrBlocks") or [])]
    else:
        protocol = str(rule.get("ipProtocol", "")).lower()
        sources = [s for s in (rule.get("cidrIpv4"), rule.get("cidrIpv6")) if s]
    if protocol in _ALL_PROTOCOLS:
        # All protocols means all ports, whatever the port fields say.
        return any(covers(source, cidr) for source in sources)
    if protocol not in ("tcp", "6"):
        return False
    low, high = rule.get("fromPort"), rule.get("toPort")
    if low is None or high is None or not int(low) <= API_PORT <= int(high):
        return False
    return any(covers(source, cidr) for source in sources)


def route_back(route: Mapping[str, Any], cidr: str) -> bool:
    """Whether one route (a Route's inputs or an inline route of a RouteTable) carries replies to ``cidr``."""
    destination = route.get("destinationCidrBlock") or route.get("cidrBlock") \
        or route.get("destinationIpv6CidrBlock") or route.get("ipv6CidrBlock")
    if not destination or not covers(str(destination), cidr):
        return False
    return any(isinstance(route.get(key), str) and route[key].startswith(prefix)
               for key, prefix in PRIVATE_TARGETS.items())


def connection_of(route: Mapping[str, Any]) -> tuple[Connection, str] | None:
    """The kind of connection a route's private target needs, and the target's id (None for other targets)."""
    for connection in CONNECTIONS:
        target = route.get(connection.key)
        if isinstance(target, str) and target.startswith(PRIVATE_TARGETS[connection.key]):
            return connection, target
    return None


def check(graph: ResourceGraph, config: StackConfig) -> list[Finding]:
    """Findings for every allowed private network that cannot reach the cluster's endpoint."""
    if not isinstance(config, PlatformConfig):
        return []  # team stacks deploy to their platform's cluster and create no network
    clusters = graph.of_type(EKS_CLUSTER)
    if not clusters:
        return []
    cluster = clusters[0]
    cidrs = list(config.cluster.private_access_cidrs)
    key = f"{config.project}:cluster.privateAccessCidrs"
    findings: list[Finding] = []
    if lookup(cluster.inputs, "vpcConfig.endpointPublicAccess") is False and not cidrs:
        findings.append(Finding(CHECK, key, "the cluster endpoint is private and no network may reach it: list the "
                                            "VPN or CI networks that deploy to it in cluster.privateAccessCidrs"))
    findings += _missing_rules(graph, cluster, cidrs)
    findings += _missing_routes(graph, cluster, cidrs)
    return findings


def _cluster_security_groups(cluster: ResourceRecord, graph: ResourceGraph) -> set[str]:
    """The security groups on the endpoint's network interfaces: EKS's own and any additional ones."""
    groups = [*(lookup(cluster.inputs, "vpcConfig.securityGroupIds") or []),
              lookup(graph.outputs(cluster), "vpcConfig.clusterSecurityGroupId")]
    return {g for g in groups if isinstance(g, str) and g}


def _missing_rules(graph: ResourceGraph, cluster: ResourceRecord, cidrs: Iterable[str]) -> list[Finding]:
    groups = _cluster_security_groups(cluster, graph)
    rules = [r for r in graph.records if r.type in (SECURITY_GROUP_RULE, INGRESS_RULE)
             and r.inputs.get("securityGroupId") in groups]
    return [Finding(CHECK, cluster.urn, f"no ingress rule on the cluster security group admits TCP {API_PORT} from "
                                        f"{cidr} (cluster.privateAccessCidrs): its deploys cannot reach the "
                                        f"private endpoint")
            for cidr in cidrs if not any(admits_api_traffic(r.inputs, r.type, cidr) for r in rules)]


def _missing_routes(graph: ResourceGraph, cluster: ResourceRecord, cidrs: Iterable[str]) -> list[Finding]:
    vpcs = graph.of_type(VPC)
    if not vpcs:
        return []  # an existing VPC: whoever owns it owns its routes
    outside = [c for c in cidrs if not any(covers(str(v.inputs.get("cidrBlock", "")), c) for v in vpcs)]
    if not outside:
        return []
    findings = []
    associations = graph.of_type(ROUTE_TABLE_ASSOCIATION)
    for subnet in lookup(cluster.inputs, "vpcConfig.subnetIds") or []:
        tables = [a for a in associations if a.inputs.get("subnetId") == subnet]
        if not tables:
            findings.append(Finding(CHECK, cluster.urn, f"the cluster's subnet {subnet} has no route table "
                                                        f"association: replies to {', '.join(outside)} would follow "
                                                        f"the VPC's main route table"))
        for association in tables:
            table = _route_table(graph, association)
            table_id = association.inputs.get("routeTableId")
            # Each route with the record that creates it: an inline route is created with its table.
            routes = [(r.inputs, r) for r in graph.of_type(ROUTE) if r.inputs.get("routeTableId") == table_id]
            routes += [(inline, table) for inline in table.inputs.get("routes") or []] if table is not None else []
            vpc = table.inputs.get("vpcId") if table is not None else None
            for cidr in outside:
                back = [(route, creator) for route, creator in routes if route_back(route, cidr)]
                if not back:
                    findings.append(Finding(
                        CHECK, table.urn if table is not None else str(table_id),
                        f"no route sends replies to {cidr} (cluster.privateAccessCidrs) through a transit gateway, "
                        f"VPC peering connection or VPN gateway: add one in network.routes"))
                    continue
                unconnected = [_unconnected(graph, route, creator, cidr, vpc) for route, creator in back]
                if all(unconnected):
                    findings += [Finding(CHECK, creator.urn, str(problem))
                                 for (_, creator), problem in zip(back, unconnected, strict=True)]
    return list(dict.fromkeys(findings))


def _unconnected(graph: ResourceGraph, route: Mapping[str, Any], creator: ResourceRecord, cidr: str,
                 vpc: str | None) -> str | None:
    """Why a route back to ``cidr`` cannot be created (its target is not connected to the VPC), or None."""
    found = connection_of(route)
    if found is None:
        return None
    connection, target = found
    connections = [c for c in graph.of_type(connection.resource_type)
                   if connection.connects(c.inputs, target, vpc)]
    if not connections:
        return (f"the route to {cidr} goes through {connection.kind} {target}, but the stack does not "
                f"{connection.missing} (no {connection.resource_type}): EC2 refuses the route on the first deploy")
    if not graph.waits_for_any(creator, connections):
        return (f"the route to {cidr} through {connection.kind} {target} does not wait for "
                f"{', '.join(c.name for c in connections)} ({connection.resource_type}): `pulumi up` may create "
                f"the route first, and EC2 refuses it until the VPC is connected")
    return None


def _route_table(graph: ResourceGraph, association: ResourceRecord) -> ResourceRecord | None:
    """The RouteTable record an association attaches, found through its dependency on the table."""
    tables = [graph.by_urn[u] for u in association.options.get("dependsOn", ())
              if u in graph.by_urn and graph.by_urn[u].type == ROUTE_TABLE]
    return tables[0] if len(tables) == 1 else None
