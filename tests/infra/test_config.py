"""Stack config parsing: defaults, and every kind of mistake reported together with key, value and what is allowed."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest

from infra.config import ConfigError, PlatformConfig, TeamConfig, parse_stack_config

FAMILIES = "g4dn, g5, g6, g6e, p4d, p4de, p5, p5e, p5en"
TOP_KEYS = ("environment, costCenter, dataClassification, team, platformStack, network, cluster, teams, gpuPools, "
            "modelStore, observability, autoscaling, recovery, models")
BASTIONS = "10.64.250.0/24"
# What a prod platform stack must set (tests/infra/test_recovery.py); `recovery=None` leaves it out.
PROD_RECOVERY = {"region": "us-west-2"}
POOL_KEYS = ("minSize, maxSize, desiredSize, name, provisioner, instanceTypes, capacityType, capacityTypes, "
             "capacityReservationIds, rootVolumeGib, dedicatedTeam, consolidation, expireAfter, "
             "terminationGracePeriod, sharing")
PREFIX_RULE = ("allowed: a registry host and at least one repository path segment, ending in '/' "
               "(docker.io/pytorch/, ghcr.io/acme/models/)")


def platform(**overrides: Any) -> dict[str, str]:
    values: dict[str, Any] = {
        "aws:region": "us-east-1", "ai-platform:environment": "dev", "ai-platform:costCenter": "cc-1",
        "ai-platform:dataClassification": "internal", "ai-platform:team": "", "ai-platform:platformStack": "",
        "ai-platform:gpuPools": [{"name": "l4", "instanceTypes": ["g6.xlarge"], "maxSize": 2}],
        # A private endpoint needs a network that may reach it; one inside the default VPC needs no route.
        "ai-platform:cluster": {"privateAccessCidrs": [BASTIONS]},
    }
    if overrides.get("environment") == "prod":
        values["ai-platform:recovery"] = PROD_RECOVERY
    values.update({k if ":" in k else f"ai-platform:{k}": v for k, v in overrides.items()})
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in values.items() if v is not None}


def team(**overrides: Any) -> dict[str, str]:
    values = platform(**{"team": "vision", "platformStack": "acme/ai-platform/dev", **overrides})
    values.pop("ai-platform:gpuPools")
    if "recovery" not in overrides:
        values.pop("ai-platform:recovery", None)
    if "cluster" not in overrides:
        values.pop("ai-platform:cluster")
    return values


def problems(values: dict[str, str], stack: str = "dev") -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_stack_config(values, project="ai-platform", stack=stack)
    assert caught.value.stack_file == f"stacks/Pulumi.{stack}.yaml"
    return [p.render() for p in caught.value.problems]


def test_platform_defaults():
    config = parse_stack_config(platform(), project="ai-platform", stack="dev")
    assert isinstance(config, PlatformConfig)
    assert config.cluster.endpoint_public_access is False
    assert config.network.nat_gateways == "perAz"
    assert config.gpu_pools[0].min_size == 0 and config.gpu_pools[0].desired == 0
    assert config.gpu_pools[0].gpu.gpu == "nvidia-l4"
    assert config.model_store.deletion_protection == "protect"
    assert config.tags == {"team": "platform", "environment": "dev", "cost-center": "cc-1",
                           "data-classification": "internal", "managed-by": "pulumi"}


def test_registry_prefixes_are_kept_as_the_runtime_reads_them():
    values = platform(cluster={"privateAccessCidrs": [BASTIONS], "approvedRegistries": ["pytorch/", "ghcr.io/acme/"]})
    config = parse_stack_config(values, project="ai-platform", stack="dev")
    assert config.cluster.approved_registries == ("docker.io/pytorch/", "ghcr.io/acme/")


def test_team_config():
    config = parse_stack_config(team(), project="ai-platform", stack="vision-dev")
    assert isinstance(config, TeamConfig)
    assert config.team == "vision" and config.tags["team"] == "vision"


def test_config_error_is_a_clean_pulumi_failure():
    assert issubclass(ConfigError, pulumi.RunError)


BAD_CONFIGS = [
    ("unknown key", platform(gpuPool=[]), "dev",
     [f"ai-platform:gpuPool = []: unknown key (did you mean gpuPools?); allowed keys: {TOP_KEYS}"]),
    ("unknown nested key", platform(gpuPools=[{"name": "l4", "instanceTypes": ["g6.xlarge"], "maxSize": 2,
                                               "capcityType": "SPOT"}]), "dev",
     [f'ai-platform:gpuPools[0].capcityType = "SPOT": unknown key (did you mean capacityType?); '
      f"allowed keys: {POOL_KEYS}"]),
    ("wrong type", platform(cluster={"endpointPublicAccess": "yes"}), "dev",
     ['ai-platform:cluster.endpointPublicAccess = "yes": must be true or false, unquoted (the stack file\'s YAML '
      "reads yes, on and quoted words as text)"]),
    ("unsupported instance type", platform(gpuPools=[{"name": "l4", "instanceTypes": ["m5.large"], "maxSize": 2}]),
     "dev", [f'ai-platform:gpuPools[0].instanceTypes[0] = "m5.large": is not a supported GPU instance type; '
             f"allowed families: {FAMILIES}"]),
    ("min > max", platform(gpuPools=[{"name": "l4", "instanceTypes": ["g6.xlarge"], "minSize": 3, "maxSize": 1}]),
     "dev", ["ai-platform:gpuPools[0].maxSize = 1: must be at least minSize (3)"]),
    ("desired outside bounds",
     platform(gpuPools=[{"name": "l4", "instanceTypes": ["g6.xlarge"], "maxSize": 2, "desiredSize": 5}]),
     "dev", ["ai-platform:gpuPools[0].desiredSize = 5: must lie between minSize (0) and maxSize (2)"]),
    ("missing team", platform(**{"ai-platform:gpuPools": None}), "vision-dev",
     ["ai-platform:team = (not set): required for the team stack 'vision-dev' (platform stacks are named after "
      "their environment: 'dev', or 'dev-dr' for its recovery stack)",
      "ai-platform:gpuPools = (not set): required key is not set"]),
    ("platform stack reference missing", team(platformStack=""), "vision-dev",
     ["ai-platform:platformStack = (not set): required key is not set"]),
    ("platform stack of another environment", team(platformStack="acme/ai-platform/prod"), "vision-dev",
     ['ai-platform:platformStack = "acme/ai-platform/prod": must name the platform stack of the team\'s '
      "environment (.../dev) or its recovery stack (.../dev-dr)"]),
    ("bad CIDR", platform(cluster={"endpointPublicAccess": True, "publicAccessCidrs": ["10.0.0.300/24"]}), "dev",
     ['ai-platform:cluster.publicAccessCidrs[0] = "10.0.0.300/24": must be an IPv4 CIDR block such as '
      "203.0.113.0/24"]),
    ("public endpoint without allowlist", platform(cluster={"endpointPublicAccess": True}), "dev",
     ["ai-platform:cluster.publicAccessCidrs = (not set): must list at least one CIDR when endpointPublicAccess "
      "is true"]),
    ("open to the internet", platform(cluster={"endpointPublicAccess": True, "publicAccessCidrs": ["0.0.0.0/0"]}),
     "dev", ['ai-platform:cluster.publicAccessCidrs[0] = "0.0.0.0/0": is too broad (shorter than /8); list the '
             "networks that need access"]),
    ("half the internet", platform(cluster={"endpointPublicAccess": True,
                                            "publicAccessCidrs": ["0.0.0.0/1", "128.0.0.0/1"]}), "dev",
     ['ai-platform:cluster.publicAccessCidrs[0] = "0.0.0.0/1": is too broad (shorter than /8); list the '
      "networks that need access",
      'ai-platform:cluster.publicAccessCidrs[1] = "128.0.0.0/1": is too broad (shorter than /8); list the '
      "networks that need access"]),
    ("reserved team name", team(team="kube-system"), "kube-system-dev",
     ['ai-platform:team = "kube-system": is reserved (kube-*, default, kserve, cert-manager, monitoring, logging, '
      "elastic-system, platform, keda, aip-capacity); pick the team's own name"]),
    ("cost center that is no tag value", platform(costCenter="R&D"), "dev",
     ['ai-platform:costCenter = "R&D": may contain only letters, digits, spaces and _ . : / = + - @ '
      "(it becomes a tag)"]),
    ("platform stack of another project", team(platformStack="acme/other/dev"), "vision-dev",
     ['ai-platform:platformStack = "acme/other/dev": must name a stack of this project '
      "(<org>/ai-platform/<environment>)"]),
    ("unknown environment", platform(environment="qa"), "qa",
     ['ai-platform:environment = "qa": must be one of: dev, staging, prod']),
    ("version written as a number", platform(cluster={"version": 1.34}), "dev",
     ['ai-platform:cluster.version = 1.34: must be written as a string (quote it: "1.34")']),
    ("unsupported version", platform(cluster={"version": "1.20"}), "dev",
     ['ai-platform:cluster.version = "1.20": is not a supported EKS version; allowed: 1.33, 1.34, 1.35']),
    ("single NAT in prod", platform(environment="prod", network={"natGateways": "single"}), "prod",
     ['ai-platform:network.natGateways = "single": must be perAz in prod (one NAT gateway per AZ)']),
    ("platform key in a team stack", team(cluster={}), "vision-dev",
     ["ai-platform:cluster = {}: is only valid in platform stacks"]),
    ("team stack named wrongly", team(), "vision-test",
     ['stack name = "vision-test": a team stack must be named <team>-<environment> (vision-dev)']),
    ("bad region", platform(**{"aws:region": "mars-1"}), "dev",
     ['aws:region = "mars-1": must be an AWS region name such as us-east-1']),
    ("duplicate pool names", platform(gpuPools=[{"name": "l4", "instanceTypes": ["g6.xlarge"], "maxSize": 2}] * 2),
     "dev", ['ai-platform:gpuPools = [{"name": "l4", "instanceTypes": ["g6.xlarge"], "maxSize": 2}, {"name": "l4", '
             '"instanceTypes": ["g6.xlarge"], "maxSize": 2}]: pool names must be unique; repeated: l4']),
    ("mixed GPU models", platform(gpuPools=[{"name": "x", "instanceTypes": ["g6.xlarge", "g5.xlarge"], "maxSize": 1}]),
     "dev", ['ai-platform:gpuPools[0].instanceTypes = ["g6.xlarge", "g5.xlarge"]: mixes GPU models (nvidia-a10g, '
             "nvidia-l4); use one pool per GPU model"]),
    ("bring-your-own VPC with one subnet",
     platform(network={"existingVpcId": "vpc-0123456789abcdef0", "existingPrivateSubnetIds": ["subnet-01234567"]}),
     "dev", ['ai-platform:network.existingPrivateSubnetIds = ["subnet-01234567"]: needs at least 2 private subnets '
             "(in different AZs) when existingVpcId is set"]),
    ("registry allowlist too broad", platform(cluster={"privateAccessCidrs": [BASTIONS], "approvedRegistries": [
        "", "docker.io/", "ghcr.io/", "docker.io/pytorch"]}), "dev",
     [f'ai-platform:cluster.approvedRegistries[0] = "": is empty, which matches every image; {PREFIX_RULE}',
      'ai-platform:cluster.approvedRegistries[1] = "docker.io/": names the whole registry docker.io, approving every '
      f"repository in it; {PREFIX_RULE}",
      'ai-platform:cluster.approvedRegistries[2] = "ghcr.io/": names the whole registry ghcr.io, approving every '
      f"repository in it; {PREFIX_RULE}",
      'ai-platform:cluster.approvedRegistries[3] = "docker.io/pytorch": does not end with \'/\', so it would also '
      f"match longer names (docker.io/pytorch matches docker.io/pytorchevil/...); {PREFIX_RULE}"]),
    ("registry listed twice", platform(cluster={"privateAccessCidrs": [BASTIONS], "approvedRegistries": [
        "pytorch/", "docker.io/pytorch/"]}), "dev",
     ['ai-platform:cluster.approvedRegistries = ["pytorch/", "docker.io/pytorch/"]: lists docker.io/pytorch/ more '
      "than once (Docker Hub short forms such as pytorch/ are docker.io/pytorch/); list each prefix once"]),
]


@pytest.mark.parametrize(("values", "stack", "expected"), [c[1:] for c in BAD_CONFIGS], ids=[c[0] for c in BAD_CONFIGS])
def test_bad_config_is_reported_with_key_value_and_what_is_allowed(values, stack, expected):
    assert problems(values, stack) == expected


def test_every_problem_is_reported_at_once():
    values = platform(environment="prod", gpuPool=[], cluster={"endpointPublicAccess": True},
                      gpuPools=[{"name": "L4", "instanceTypes": ["m5.large"], "maxSize": 1}])
    found = problems(values, "prod")
    assert len(found) == 4
    assert [line.split(" = ")[0] for line in found] == [
        "ai-platform:gpuPool", "ai-platform:cluster.publicAccessCidrs", "ai-platform:gpuPools[0].name",
        "ai-platform:gpuPools[0].instanceTypes[0]"]


def test_message_names_the_stack_file():
    with pytest.raises(ConfigError) as caught:
        parse_stack_config(platform(environment="qa"), project="ai-platform", stack="qa")
    assert str(caught.value).splitlines()[0] == "stacks/Pulumi.qa.yaml: 1 configuration problem:"


# -- who can reach the cluster endpoint, and how replies get back --------------------------------------------------

CI = "10.100.0.0/16"
TGW = "tgw-0a1b2c3d4e5f60718"
VPN_CLIENTS = "172.20.0.0/22"
OWN_VPC = {"existingVpcId": "vpc-0123456789abcdef0", "existingPrivateSubnetIds": ["subnet-01234567", "subnet-89abcdef"]}
NOBODY = ("must list the private networks that deploy to the cluster (CI runners, VPN) when endpointPublicAccess is "
          "false: the endpoint is private and nothing outside the cluster could reach it")
EXACTLY_ONE = "needs exactly one of transitGatewayId, vpnGatewayId"
NO_PEERING = ("a VPC peering connection needs this stack's VPC to exist before it can be created, so a route "
              "through one fails on the first deploy; route through transitGatewayId or vpnGatewayId instead, "
              "or bring your own VPC (existingVpcId) and manage its routes there")

UNREACHABLE_CONFIGS = [
    ("private endpoint, no networks", platform(cluster={}),
     [f"ai-platform:cluster.privateAccessCidrs = (not set): {NOBODY}"]),
    ("cluster key left out", platform(cluster=None),
     [f"ai-platform:cluster.privateAccessCidrs = (not set): {NOBODY}"]),
    ("empty list", platform(cluster={"privateAccessCidrs": []}),
     [f"ai-platform:cluster.privateAccessCidrs = []: {NOBODY}"]),
    ("network beyond the VPC without a route", platform(cluster={"privateAccessCidrs": [BASTIONS, CI]}),
     [f'ai-platform:cluster.privateAccessCidrs = ["{BASTIONS}", "{CI}"]: {CI} lies outside the VPC (10.64.0.0/16) '
      "and no network.routes entry covers it: the API's replies would go to the NAT gateway; add a route through "
      "the transit gateway or VPN gateway that reaches it"]),
    ("route to another network only",
     platform(cluster={"privateAccessCidrs": [CI]},
              network={"routes": [{"cidr": "10.101.0.0/16", "transitGatewayId": TGW}]}),
     [f'ai-platform:cluster.privateAccessCidrs = ["{CI}"]: {CI} lies outside the VPC (10.64.0.0/16) and no '
      "network.routes entry covers it: the API's replies would go to the NAT gateway; add a route through the "
      "transit gateway or VPN gateway that reaches it"]),
    ("routes in a VPC the stack does not own",
     platform(network={**OWN_VPC, "routes": [{"cidr": CI, "transitGatewayId": TGW}]}),
     [f'ai-platform:network.routes = [{{"cidr": "{CI}", "transitGatewayId": "{TGW}"}}]: only with a VPC the stack '
      "creates; the routes of existingVpcId are its owner's"]),
    ("route with two targets", platform(network={"routes": [{"cidr": CI, "transitGatewayId": TGW,
                                                              "vpnGatewayId": "vgw-01234567"}]}),
     [f'ai-platform:network.routes[0] = {{"cidr": "{CI}", "transitGatewayId": "{TGW}", "vpnGatewayId": '
      f'"vgw-01234567"}}: {EXACTLY_ONE} (found 2)']),
    ("route without a target", platform(network={"routes": [{"cidr": CI}]}),
     [f'ai-platform:network.routes[0] = {{"cidr": "{CI}"}}: {EXACTLY_ONE} (found 0)']),
    ("target of the wrong kind", platform(network={"routes": [{"cidr": CI, "vpnGatewayId": TGW}]}),
     [f'ai-platform:network.routes[0].vpnGatewayId = "{TGW}": must be a virtual private gateway ID such as '
      "vgw-0123456789abcdef0"]),
    # The peering connection could only be created after the VPC it peers, so the route fails on the first deploy.
    ("peering connection of a VPC the stack creates",
     platform(cluster={"privateAccessCidrs": [CI]},
              network={"routes": [{"cidr": CI, "vpcPeeringConnectionId": "pcx-0123456789abcdef0"}]}),
     [f'ai-platform:network.routes[0].vpcPeeringConnectionId = "pcx-0123456789abcdef0": {NO_PEERING}']),
    ("destination with host bits", platform(network={"routes": [{"cidr": "10.100.0.1/16", "transitGatewayId": TGW}]}),
     ['ai-platform:network.routes[0].cidr = "10.100.0.1/16": must be an IPv4 CIDR block such as 203.0.113.0/24']),
    ("destination routed twice", platform(network={"routes": [{"cidr": CI, "transitGatewayId": TGW},
                                                              {"cidr": CI, "vpnGatewayId": "vgw-01234567"}]}),
     [f'ai-platform:network.routes = [{{"cidr": "{CI}", "transitGatewayId": "{TGW}"}}, {{"cidr": "{CI}", '
      f'"vpnGatewayId": "vgw-01234567"}}]: each destination may be routed once; repeated: {CI}']),
    ("two virtual private gateways",
     platform(network={"routes": [{"cidr": CI, "vpnGatewayId": "vgw-01234567"},
                                  {"cidr": VPN_CLIENTS, "vpnGatewayId": "vgw-89abcdef"}]}),
     [f'ai-platform:network.routes = [{{"cidr": "{CI}", "vpnGatewayId": "vgw-01234567"}}, {{"cidr": "{VPN_CLIENTS}", '
      '"vpnGatewayId": "vgw-89abcdef"}]: a VPC attaches to one virtual private gateway at a time; found 2: '
      "vgw-01234567, vgw-89abcdef"]),
    ("destination inside the VPC", platform(network={"routes": [{"cidr": "10.64.8.0/24", "transitGatewayId": TGW}]}),
     ['ai-platform:network.routes = [{"cidr": "10.64.8.0/24", "transitGatewayId": "' + TGW + '"}]: must route '
      "networks beyond the VPC; inside it (10.64.0.0/16), which its local route serves: 10.64.8.0/24"]),
]


@pytest.mark.parametrize(("values", "expected"), [c[1:] for c in UNREACHABLE_CONFIGS],
                         ids=[c[0] for c in UNREACHABLE_CONFIGS])
def test_unreachable_endpoint_is_a_config_error(values, expected):
    assert problems(values) == expected


REACHABLE_CONFIGS = [
    ("a network inside the VPC", platform(cluster={"privateAccessCidrs": [BASTIONS]})),
    ("a network beyond the VPC, routed", platform(cluster={"privateAccessCidrs": [CI]},
                                                 network={"routes": [{"cidr": CI, "transitGatewayId": TGW}]})),
    ("covered by a broader route", platform(cluster={"privateAccessCidrs": [CI, "10.200.0.0/24"]},
                                           network={"routes": [{"cidr": "10.0.0.0/8", "transitGatewayId": TGW}]})),
    ("through a VPN gateway",
     platform(cluster={"privateAccessCidrs": ["172.20.0.0/22"]},
              network={"routes": [{"cidr": "172.20.0.0/22", "vpnGatewayId": "vgw-01234567"}]})),
    ("an existing VPC routes for itself", platform(cluster={"privateAccessCidrs": [CI]}, network=OWN_VPC)),
    ("a public endpoint to an allowlist", platform(cluster={"endpointPublicAccess": True,
                                                           "publicAccessCidrs": ["203.0.113.0/24"]})),
]


@pytest.mark.parametrize("values", [c[1] for c in REACHABLE_CONFIGS], ids=[c[0] for c in REACHABLE_CONFIGS])
def test_reachable_endpoints_are_accepted(values):
    config = parse_stack_config(values, project="ai-platform", stack="dev")
    assert isinstance(config, PlatformConfig)


def test_routes_are_parsed_with_their_one_target():
    config = parse_stack_config(platform(cluster={"privateAccessCidrs": [CI]},
                                         network={"routes": [{"cidr": CI, "transitGatewayId": TGW}]}),
                                project="ai-platform", stack="dev")
    assert isinstance(config, PlatformConfig)
    (route,) = config.network.routes
    assert (route.cidr, route.transit_gateway_id, route.vpn_gateway_id, route.gateway_id) == (CI, TGW, None, TGW)


def test_a_long_value_is_shown_cut_short_with_its_length():
    [found] = problems(platform(costCenter="x" * 5000))
    assert found.startswith('ai-platform:costCenter = "xxx') and '... (5002 characters): must be at most 64' in found
    assert len(found) < 1200


@pytest.mark.parametrize("word", ["yes", "on", "Off", "y"])
def test_yaml_1_1_booleans_stay_text_as_the_engine_reads_them(scratch_project, word):
    from infra.preview import Project

    stack = scratch_project / "stacks" / "Pulumi.dev.yaml"
    stack.write_text(stack.read_text().replace("scaleToZero: true", f"scaleToZero: {word}"))
    project = Project.load(scratch_project)
    values = project.stack_config("dev").values
    assert json.loads(values["ai-platform:autoscaling"]) == {"scaleToZero": word}
    with pytest.raises(ConfigError) as caught:
        parse_stack_config(values, project=project.name, stack="dev")
    assert [p.render() for p in caught.value.problems] == [
        f'ai-platform:autoscaling.scaleToZero = "{word}": must be true or false, unquoted (the stack file\'s YAML '
        "reads yes, on and quoted words as text)"]


@pytest.mark.parametrize(("values", "key"), [
    (platform(**{"aws:region": "us-east-1\n"}), "aws:region"),
    (platform(gpuPools=[{"name": "l4", "instanceTypes": ["g6.xlarge\n"], "maxSize": 2}]), "ai-platform:gpuPools"),
    (platform(gpuPools=[{"name": "l4\n", "instanceTypes": ["g6.xlarge"], "maxSize": 2}]), "ai-platform:gpuPools"),
    (team(platformStack="acme/ai-platform/dev\n"), "ai-platform:platformStack"),
    (team(models=[{"name": "digits", "handler": "digits", "memory": "4Gi\n"}]), "ai-platform:models"),
    (team(models=[{"name": "digits", "handler": "digits", "cpu": "1\n"}]), "ai-platform:models"),
    (team(models=[{"name": "digits", "handler": "digits", "version": "0123456789ab\n"}]), "ai-platform:models"),
], ids=["region", "instance-type", "pool-name", "stack-reference", "memory", "cpu", "version"])
def test_a_trailing_newline_is_not_part_of_a_valid_value(values, key):
    # `$` in a Python pattern also matches before a final newline; a value pasted with one would reach AWS as is.
    found = problems(values)
    assert any(p.startswith(key) and "\\n" in p for p in found), found
