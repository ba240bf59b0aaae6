"""Check "reachability": the networks allowed to reach a private cluster endpoint can actually reach it.

A private-only endpoint answers only inside the VPC. A deploy (`pulumi up` from CI, `kubectl` from a VPN)
reaches it when two things hold: the cluster security group admits TCP 443 from the caller's network, and
the subnets holding the endpoint's network interfaces route replies back to that network through private
transport (a transit gateway, VPC peering or a VPN gateway; a NAT or internet gateway does not carry
private traffic back).

https://docs.aws.amazon.com/eks/latest/userguide/cluster-endpoint.html#private-access
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

from infra.config import PlatformConfig, StackConfig
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
_ALL_PROTOCOLS = ("-1", "all")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def covers(outer: str, inner: str) -> bool:
    """Whether CIDR ``outer`` contains all of CIDR ``inner`` (False for malformed or mixed-family CIDRs)."""
    try:
        big, small = ipaddress.ip_network(outer, strict=False), ipaddress.ip_network(inner, strict=False)
    except ValueError:
        return False
    return big.version == small.version and small.subnet_of(big)  # type: ignore[arg-type]


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
            routes = [r.inputs for r in graph.of_type(ROUTE) if r.inputs.get("routeTableId") == table_id]
            routes += list(table.inputs.get("routes") or []) if table is not None else []
            findings += [Finding(CHECK, table.urn if table is not None else str(table_id),
                                 f"no route sends replies to {cidr} (cluster.privateAccessCidrs) through a transit "
                                 f"gateway, VPC peering connection or VPN gateway: add one in network.routes")
                         for cidr in outside if not any(route_back(route, cidr) for route in routes)]
    return list(dict.fromkeys(findings))


def _route_table(graph: ResourceGraph, association: ResourceRecord) -> ResourceRecord | None:
    """The RouteTable record an association attaches, found through its dependency on the table."""
    tables = [graph.by_urn[u] for u in association.options.get("dependsOn", ())
              if u in graph.by_urn and graph.by_urn[u].type == ROUTE_TABLE]
    return tables[0] if len(tables) == 1 else None
