"""aws-eks-cluster-endpoint-private: the API endpoint is private, or public only to narrow, routable allowlists.

What a public endpoint may be open to is pack config, per environment:

- ``allowPublicEndpoint`` false (prod): any public endpoint is a violation; an exception is a waiver for that
  one cluster, with a reason, an approver and an expiry date.
- Where it is true, every ``publicAccessCidrs`` entry is at least as narrow as ``minPublicPrefixLength``
  (IPv4) or ``minPublicIpv6PrefixLength`` (IPv6): an allowlist of a /8 admits millions of addresses and is
  barely narrower than none.

In every environment an entry may not be private or reserved address space (RFC 1918, shared address space,
loopback, link-local, multicast...): clients reach a public endpoint from public addresses only, so such an
entry admits nobody and usually stands for a network that belongs in the private endpoint's allowlist.
"""

from __future__ import annotations

import ipaddress

from pulumi_policy import (
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
)

from policies.frameworks import ISO27001, SOC2, cis_eks
from policies.props import config_value, get, items, number, truthy

CLUSTER = "aws:eks/cluster:Cluster"
DEFAULT_ALLOW_PUBLIC_ENDPOINT = True
DEFAULT_MIN_PREFIX = 24
DEFAULT_MIN_IPV6_PREFIX = 56

# Address space that is never the source of a request to a public endpoint (IANA special-purpose registries).
# The documentation ranges (RFC 5737, e.g. 203.0.113.0/24) are left out: examples and tests use them to stand
# for an administrator's network.
RESERVED: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...] = tuple(
    (ipaddress.ip_network(cidr), label) for cidr, label in (
        ("0.0.0.0/8", "'this network'"),
        ("10.0.0.0/8", "private (RFC 1918)"),
        ("100.64.0.0/10", "shared carrier-grade NAT (RFC 6598)"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local"),
        ("172.16.0.0/12", "private (RFC 1918)"),
        ("192.0.0.0/24", "IETF protocol assignments"),
        ("192.168.0.0/16", "private (RFC 1918)"),
        ("198.18.0.0/15", "benchmarking"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved"),
        ("::1/128", "loopback"),
        ("::ffff:0:0/96", "IPv4-mapped"),
        ("100::/64", "discard-only"),
        ("fc00::/7", "unique local"),
        ("fe80::/10", "link-local"),
        ("ff00::/8", "multicast"),
    ))


def _problem(name: str, cidr: str, min_prefix: int, min_ipv6_prefix: int) -> str | None:
    """What is wrong with one publicAccessCidrs entry, or None; the first problem only."""
    try:
        network = ipaddress.ip_network(cidr.strip(), strict=False)
    except ValueError:
        return f"EKS cluster '{name}' has an invalid publicAccessCidrs entry '{cidr}'."
    if network.prefixlen == 0:
        return f"EKS cluster '{name}' has a public endpoint open to {cidr}."
    minimum, setting = ((min_prefix, "minPublicPrefixLength") if network.version == 4
                        else (min_ipv6_prefix, "minPublicIpv6PrefixLength"))
    if network.prefixlen < minimum:
        return (f"EKS cluster '{name}' allows {cidr} to reach its public endpoint; this environment allows /{minimum} "
                f"or narrower ({setting}).")
    for reserved, label in RESERVED:
        if reserved.version == network.version and reserved.overlaps(network):
            return (f"EKS cluster '{name}' lists {cidr} in publicAccessCidrs; {reserved} is {label} address space, "
                    "which never reaches a public endpoint (allow private networks on the private endpoint).")
    return None


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != CLUSTER:
        return
    vpc = get(args.props, "vpcConfig", default={})
    # The provider defaults endpointPublicAccess to true when it is not set.
    if not truthy(get(vpc, "endpointPublicAccess", default=True)):
        return
    if not truthy(config_value(args, "allowPublicEndpoint", DEFAULT_ALLOW_PUBLIC_ENDPOINT)):
        report_violation(f"EKS cluster '{args.name}' has a public endpoint; this environment allows none "
                         "(allowPublicEndpoint is false): make it private, or waive this policy for the cluster.")
    min_prefix = int(number(config_value(args, "minPublicPrefixLength", DEFAULT_MIN_PREFIX), DEFAULT_MIN_PREFIX))
    min_ipv6_prefix = int(number(config_value(args, "minPublicIpv6PrefixLength", DEFAULT_MIN_IPV6_PREFIX),
                                 DEFAULT_MIN_IPV6_PREFIX))
    cidrs = [str(c) for c in items(get(vpc, "publicAccessCidrs"))]
    if not cidrs:
        report_violation(f"EKS cluster '{args.name}' has a public endpoint open to 0.0.0.0/0 "
                         "(no publicAccessCidrs).")
    for cidr in cidrs:
        problem = _problem(args.name, cidr, min_prefix, min_ipv6_prefix)
        if problem:
            report_violation(problem)
    for problem in _joined_problems(args.name, cidrs, min_prefix, min_ipv6_prefix):
        report_violation(problem)


def _joined_problems(name: str, cidrs: list[str], min_prefix: int, min_ipv6_prefix: int) -> list[str]:
    """Entries that are narrow one by one but together form a range wider than the environment allows.

    Thirty-two adjacent /24s admit exactly what one /19 does; the limit is on what the allowlist opens.
    """
    networks = []
    for cidr in cidrs:
        try:
            networks.append(ipaddress.ip_network(cidr.strip(), strict=False))
        except ValueError:
            continue  # reported entry by entry
    problems = []
    for version, minimum in ((4, min_prefix), (6, min_ipv6_prefix)):
        own = [n for n in networks if n.version == version and n.prefixlen >= minimum]
        for joined in ipaddress.collapse_addresses(own):
            if joined.prefixlen < minimum:
                parts = ", ".join(str(n) for n in sorted(own) if n.subnet_of(joined))
                problems.append(f"EKS cluster '{name}' allows {parts} to reach its public endpoint; together they "
                                f"open {joined}, wider than the /{minimum} this environment allows.")
    return problems


aws_eks_cluster_endpoint_private = ResourceValidationPolicy(
    name="aws-eks-cluster-endpoint-private",
    description="EKS cluster API endpoints are private, or public (where allowPublicEndpoint) only to public CIDRs "
                "at least as narrow as minPublicPrefixLength.",
    validate=validate,
    config_schema=PolicyConfigSchema(properties={
        "allowPublicEndpoint": {"type": "boolean", "default": DEFAULT_ALLOW_PUBLIC_ENDPOINT},
        "minPublicPrefixLength": {"type": "integer", "minimum": 1, "maximum": 32, "default": DEFAULT_MIN_PREFIX},
        "minPublicIpv6PrefixLength": {"type": "integer", "minimum": 1, "maximum": 128,
                                      "default": DEFAULT_MIN_IPV6_PREFIX},
    }),
    severity=Severity.HIGH,
    framework=cis_eks("5.4.2"),
    tags=["aws", "eks", "network", SOC2, ISO27001],
    remediation_steps="Set stack config cluster.endpointPublicAccess to false and reach the API through the VPC "
                      "(cluster.privateAccessCidrs). Outside prod, a public endpoint may list the admin networks' "
                      "public egress ranges in cluster.publicAccessCidrs, each /minPublicPrefixLength or narrower "
                      "(policies/config/<env>.json); in prod a public endpoint needs a waiver "
                      "(policies/waivers.yaml).",
    url="https://docs.aws.amazon.com/eks/latest/userguide/cluster-endpoint.html",
)
