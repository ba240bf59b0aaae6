"""Whether the networks allowed to reach a private cluster endpoint get their replies back.

The endpoint's network interfaces sit in the cluster's private subnets. A reply to a caller inside the VPC
follows the VPC's local route; a reply to any other network follows the subnets' route tables, whose default
route is the NAT gateway, which carries no traffic back to a private network. So every allowed network
outside the VPC needs a route of its own (through a transit gateway or VPN gateway the VPC is attached to).
https://docs.aws.amazon.com/eks/latest/userguide/cluster-endpoint.html#private-access
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable


def covers(outer: str, inner: str) -> bool:
    """Whether CIDR ``outer`` contains all of CIDR ``inner`` (False for malformed or mixed-family CIDRs)."""
    try:
        big, small = ipaddress.ip_network(outer, strict=False), ipaddress.ip_network(inner, strict=False)
    except ValueError:
        return False
    return big.version == small.version and small.subnet_of(big)  # type: ignore[arg-type]


def unrouted_networks(cidrs: Iterable[str], vpc_cidr: str, route_cidrs: Iterable[str]) -> list[str]:
    """The ``cidrs`` that lie (even partly) outside ``vpc_cidr`` and that no route destination covers."""
    routes = list(route_cidrs)
    return [c for c in cidrs if not covers(vpc_cidr, c) and not any(covers(r, c) for r in routes)]
