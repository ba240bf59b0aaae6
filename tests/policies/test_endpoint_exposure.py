"""aws-eks-cluster-endpoint-private per environment: no public endpoint in prod, narrow public allowlists elsewhere,
never a private or reserved range, each case with its exact message."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from policies.aws.eks.cluster_endpoint_private import CLUSTER, aws_eks_cluster_endpoint_private
from tests.conftest import aip
from tests.policies.support import mutate, validate_resource
from tests.policies.test_aws_compute import EKS_CLUSTER

ROOT = Path(__file__).resolve().parents[2]
POLICY = aws_eks_cluster_endpoint_private.name
PUBLIC = mutate(EKS_CLUSTER, "vpcConfig.endpointPublicAccess", True)
NONE_IN_PROD = ("EKS cluster 'res' has a public endpoint; this environment allows none (allowPublicEndpoint is false): "
                "make it private, or waive this policy for the cluster.")


def pack(environment: str) -> dict[str, Any]:
    entry = json.loads((ROOT / "policies" / "config" / f"{environment}.json").read_text())[POLICY]
    return {k: v for k, v in entry.items() if k != "enforcementLevel"}


def exposed(environment: str | None, *cidrs: str) -> list[str]:
    props = mutate(PUBLIC, "vpcConfig.publicAccessCidrs", list(cidrs)) if cidrs else PUBLIC
    return validate_resource(aws_eks_cluster_endpoint_private, CLUSTER, props,
                             config=pack(environment) if environment else None)


def narrow(cidr: str, minimum: int, setting: str = "minPublicPrefixLength") -> str:
    return (f"EKS cluster 'res' allows {cidr} to reach its public endpoint; this environment allows /{minimum} or "
            f"narrower ({setting}).")


def reserved(cidr: str, block: str, label: str) -> str:
    return (f"EKS cluster 'res' lists {cidr} in publicAccessCidrs; {block} is {label} address space, which never "
            "reaches a public endpoint (allow private networks on the private endpoint).")


def test_the_environments_limits() -> None:
    assert pack("prod")["allowPublicEndpoint"] is False
    assert pack("staging")["allowPublicEndpoint"] is True and pack("staging")["minPublicPrefixLength"] == 24
    assert pack("dev")["allowPublicEndpoint"] is True and pack("dev")["minPublicPrefixLength"] == 16


@pytest.mark.parametrize("environment", ["dev", "staging", "prod", None])
def test_a_private_endpoint_passes_everywhere(environment: str | None) -> None:
    config = pack(environment) if environment else None
    assert validate_resource(aws_eks_cluster_endpoint_private, CLUSTER, EKS_CLUSTER, config=config) == []


CASES: list[tuple[str | None, tuple[str, ...], list[str]]] = [
    # environment (None: no pack config), publicAccessCidrs, messages
    ("prod", ("203.0.113.0/24",), [NONE_IN_PROD]),
    ("prod", ("203.0.113.7/32",), [NONE_IN_PROD]),
    ("prod", (), [NONE_IN_PROD, "EKS cluster 'res' has a public endpoint open to 0.0.0.0/0 (no publicAccessCidrs)."]),
    ("prod", ("52.0.0.0/8",), [NONE_IN_PROD, narrow("52.0.0.0/8", 24)]),
    ("staging", ("52.0.0.0/8",), [narrow("52.0.0.0/8", 24)]),
    ("staging", ("198.51.100.0/23",), [narrow("198.51.100.0/23", 24)]),
    ("staging", ("0.0.0.0/1", "128.0.0.0/1"), [narrow("0.0.0.0/1", 24), narrow("128.0.0.0/1", 24)]),
    ("staging", ("10.20.30.0/24",), [reserved("10.20.30.0/24", "10.0.0.0/8", "private (RFC 1918)")]),
    ("staging", ("172.20.0.0/24",), [reserved("172.20.0.0/24", "172.16.0.0/12", "private (RFC 1918)")]),
    ("staging", ("192.168.1.0/24",), [reserved("192.168.1.0/24", "192.168.0.0/16", "private (RFC 1918)")]),
    ("staging", ("100.64.10.0/24",),
     [reserved("100.64.10.0/24", "100.64.0.0/10", "shared carrier-grade NAT (RFC 6598)")]),
    ("staging", ("127.0.0.1/32",), [reserved("127.0.0.1/32", "127.0.0.0/8", "loopback")]),
    ("staging", ("169.254.169.254/32",), [reserved("169.254.169.254/32", "169.254.0.0/16", "link-local")]),
    ("staging", ("::/0",), ["EKS cluster 'res' has a public endpoint open to ::/0."]),
    ("staging", ("203.0.113.9/0",), ["EKS cluster 'res' has a public endpoint open to 203.0.113.9/0."]),
    ("staging", ("2001:db8::/32",), [narrow("2001:db8::/32", 56, "minPublicIpv6PrefixLength")]),
    ("staging", ("fd12:3456:789a::/64",), [reserved("fd12:3456:789a::/64", "fc00::/7", "unique local")]),
    ("staging", ("office",), ["EKS cluster 'res' has an invalid publicAccessCidrs entry 'office'."]),
    ("staging", ("203.0.113.0/24", "0.0.0.0/0"), ["EKS cluster 'res' has a public endpoint open to 0.0.0.0/0."]),
    ("dev", ("10.0.0.0/8",), [narrow("10.0.0.0/8", 16)]),
    ("dev", ("10.1.0.0/16",), [reserved("10.1.0.0/16", "10.0.0.0/8", "private (RFC 1918)")]),
    ("dev", ("52.0.0.0/12",), [narrow("52.0.0.0/12", 16)]),
    (None, ("52.94.0.0/16",), [narrow("52.94.0.0/16", 24)]),
]


@pytest.mark.parametrize(("environment", "cidrs", "messages"), CASES,
                         ids=[f"{c[0]}:{','.join(c[1]) or 'none'}" for c in CASES])
def test_each_exposure_is_reported(environment: str | None, cidrs: tuple[str, ...], messages: list[str]) -> None:
    assert exposed(environment, *cidrs) == messages


@pytest.mark.parametrize(("environment", "cidrs"), [
    ("staging", ("203.0.113.0/24", "198.51.100.16/28", "2001:db8:1:100::/56")),
    ("dev", ("52.94.0.0/16", "203.0.113.0/24", "2001:db8:1::/48")),
    (None, ("203.0.113.0/24",)),
])
def test_narrow_public_allowlists_pass_where_public_endpoints_are_allowed(environment, cidrs) -> None:
    assert exposed(environment, *cidrs) == []


@pytest.mark.integration
def test_a_public_endpoint_in_prod_fails_the_gate_and_a_wide_one_in_staging_too(scratch_project: Path) -> None:
    for stack, cidrs in (("prod", ["203.0.113.0/24"]), ("staging", ["52.0.0.0/8"])):
        path = scratch_project / "stacks" / f"Pulumi.{stack}.yaml"
        data = yaml.safe_load(path.read_text())
        data["config"]["ai-platform:cluster"].update({"endpointPublicAccess": True, "publicAccessCidrs": cidrs})
        path.write_text(yaml.safe_dump(data))
        run = aip("preview", "--stack", stack, "--format", "json", "--no-package", "--no-deploy-checks",
                  cwd=scratch_project)
        assert run.returncode == 1, run.stderr
        blocking = [v["message"] for v in json.loads(run.stdout)["policies"]["violations"]
                    if v["enforcement"] == "mandatory"]
        expected = (NONE_IN_PROD if stack == "prod" else narrow("52.0.0.0/8", 24)).replace(
            "'res'", f"'aip-{stack}-cluster-eks'")
        assert blocking == [expected]


def test_adjacent_narrow_entries_that_together_open_a_wide_range_are_caught():
    slices = [f"198.51.{i}.0/24" for i in range(32)]
    found = validate_resource(aws_eks_cluster_endpoint_private, CLUSTER,
                              mutate(PUBLIC, "vpcConfig.publicAccessCidrs", slices),
                              config={"minPublicPrefixLength": 24})
    assert found == [f"EKS cluster 'res' allows {', '.join(slices)} to reach its public endpoint; together they open "
                     "198.51.0.0/19, wider than the /24 this environment allows."]
    # Two separate /24s stay two narrow ranges.
    apart = ["198.51.100.0/24", "203.0.113.0/24"]
    assert validate_resource(aws_eks_cluster_endpoint_private, CLUSTER,
                             mutate(PUBLIC, "vpcConfig.publicAccessCidrs", apart),
                             config={"minPublicPrefixLength": 24}) == []
