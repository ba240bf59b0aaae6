"""The network's decisions, tested without mocks: route targets and names, the S3 endpoint, the flow log trust."""

from __future__ import annotations

import pytest

from infra import iam_policies
from infra.components.network import route_name, route_target, s3_gateway_service
from infra.config import RouteConfig
from infra.config.reachability import unrouted_networks


@pytest.mark.parametrize(("target", "expected"), [
    ({"transitGatewayId": "tgw-0a1b2c3d4e5f60718"}, {"transit_gateway_id": "tgw-0a1b2c3d4e5f60718"}),
    # EC2 takes a virtual private gateway as a route's gateway id.
    ({"vpnGatewayId": "vgw-01234567"}, {"gateway_id": "vgw-01234567"}),
])
def test_each_route_goes_to_its_one_target(target, expected):
    assert route_target(RouteConfig.model_validate({"cidr": "10.100.0.0/16", **target})) == expected


def test_routes_are_named_by_destination_so_editing_the_list_renames_nothing():
    assert route_name("aip-dev-network-private-0", "10.100.0.0/16") == "aip-dev-network-private-0-to-10.100.0.0-16"
    names = [route_name("t", cidr) for cidr in ("10.100.0.0/16", "10.100.0.0/24", "172.20.0.0/22")]
    assert len(set(names)) == 3


@pytest.mark.parametrize(("region", "service"), [("us-east-1", "com.amazonaws.us-east-1.s3"),
                                                 ("eu-west-3", "com.amazonaws.eu-west-3.s3")])
def test_s3_gateway_endpoint_service_of_the_region(region, service):
    assert s3_gateway_service(region) == service


@pytest.mark.parametrize(("cidrs", "routes", "unrouted"), [
    (["10.64.250.0/24"], [], []),                                    # inside the VPC: the local route
    (["10.100.0.0/16"], [], ["10.100.0.0/16"]),                       # beyond it, nothing routes back
    (["10.100.0.0/16"], ["10.100.0.0/16"], []),
    (["10.100.0.0/16", "10.101.0.0/24"], ["10.0.0.0/8"], []),        # a broader route covers both
    (["10.100.0.0/16"], ["10.100.0.0/17"], ["10.100.0.0/16"]),        # half a network is not enough
    (["10.0.0.0/8"], [], ["10.0.0.0/8"]),                            # contains the VPC, still leaves it
])
def test_networks_beyond_the_vpc_need_a_route_back(cidrs, routes, unrouted):
    assert unrouted_networks(cidrs, "10.64.0.0/16", routes) == unrouted


def test_flow_log_role_trusts_the_service_only_for_this_accounts_flow_logs():
    statement = iam_policies.vpc_flow_log_trust_policy("111122223333", "aws-us-gov", "us-gov-west-1")["Statement"]
    assert statement == [{
        "Effect": "Allow", "Principal": {"Service": "vpc-flow-logs.amazonaws.com"}, "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"aws:SourceAccount": "111122223333"},
                      "ArnLike": {"aws:SourceArn": "arn:aws-us-gov:ec2:us-gov-west-1:111122223333:vpc-flow-log/*"}},
    }]


def test_service_trust_without_source_has_no_condition():
    statement = iam_policies.service_trust_policy("eks.amazonaws.com", tag_session=True)["Statement"][0]
    assert "Condition" not in statement and statement["Action"] == ["sts:AssumeRole", "sts:TagSession"]
