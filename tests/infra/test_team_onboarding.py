"""Team onboarding belongs to the platform: its config, its errors, and what a team stack may still decide."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.components.cluster_access import access_policy_arn, access_scope, entry_suffix
from infra.config import ConfigError, parse_stack_config
from infra.config.teams import AccessEntryConfig
from infra.preview.render import plain
from tests.conftest import aip

ROOT = Path(__file__).resolve().parents[2]
CI = "arn:aws:iam::123456789012:role/vision-ci"


def platform(**overrides: Any) -> dict[str, str]:
    values: dict[str, Any] = {
        "aws:region": "us-east-1", "ai-platform:environment": "dev", "ai-platform:costCenter": "cc-1",
        "ai-platform:dataClassification": "internal",
        "ai-platform:cluster": {"privateAccessCidrs": ["10.64.0.0/16"]},
        "ai-platform:gpuPools": [{"name": "l4", "instanceTypes": ["g6.12xlarge"], "maxSize": 2}],
        "ai-platform:teams": [{"name": "vision", "costCenter": "vision-ml", "ciPrincipalArn": CI}],
    }
    values.update({k if ":" in k else f"ai-platform:{k}": v for k, v in overrides.items()})
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in values.items() if v is not None}


def problems(values: dict[str, str], stack: str = "dev") -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_stack_config(values, project="ai-platform", stack=stack)
    return [p.render() for p in caught.value.problems]


def test_teams_default_their_quota():
    config = parse_stack_config(platform(), project="ai-platform", stack="dev")
    assert config.teams[0].name == "vision" and config.teams[0].quota.gpu == 4
    assert config.teams[0].ci_principal_arn == CI


@pytest.mark.parametrize(("overrides", "expected"), [
    ({"teams": [{"name": "vision", "costCenter": "v", "ciPrincipalArn": "vision-ci"}]},
     ['ai-platform:teams[0].ciPrincipalArn = "vision-ci": must be an IAM role or user ARN such as '
      "arn:aws:iam::111122223333:role/ci-deployer"]),
    ({"teams": [{"name": "vision", "costCenter": "v"}]},
     ["ai-platform:teams[0].ciPrincipalArn = (not set): required key is not set"]),
    ({"teams": [{"name": "vision", "costCenter": "v", "ciPrincipalArn": CI},
                {"name": "vision", "costCenter": "w", "ciPrincipalArn": CI + "-2"}]},
     ["ai-platform:teams = [...]: team names must be unique; repeated: vision"]),
    ({"teams": [{"name": "vision", "costCenter": "v", "ciPrincipalArn": CI},
                {"name": "search", "costCenter": "w", "ciPrincipalArn": CI}]},
     ["ai-platform:teams = [...]: each team needs its own CI principal (its access is confined to its namespace); "
      f"shared: {CI}"]),
    ({"teams": [{"name": "kube-system", "costCenter": "v", "ciPrincipalArn": CI}]},
     ['ai-platform:teams[0].name = "kube-system": is reserved (kube-*, default, kserve, cert-manager, monitoring, '
      "logging, elastic-system, platform, keda, aip-capacity); pick the team's own name"]),
    ({"gpuPools": [{"name": "l4", "instanceTypes": ["g6.12xlarge"], "maxSize": 1},
                   {"name": "h100", "instanceTypes": ["p5.48xlarge"], "maxSize": 1, "dedicatedTeam": "search"}]},
     ["ai-platform:teams = [...]: dedicate pools to onboarded teams only; not in `teams`: h100 (dedicatedTeam "
      "'search'); onboarded: vision"]),
], ids=["bad principal", "no principal", "duplicate team", "shared principal", "reserved name", "stranger pool"])
def test_team_onboarding_mistakes_are_config_errors(overrides, expected):
    found = [line if len(line) < 400 and "= [{" not in line else _shorten(line)
             for line in problems(platform(**overrides))]
    assert found == expected


def _shorten(line: str) -> str:
    key, _, rest = line.partition(" = ")
    return f"{key} = [...]: {rest.split(']: ', 1)[1]}"


@pytest.mark.parametrize(("entries", "expected"), [
    ([{"principalArn": CI, "accessPolicy": "clusterAdmin", "namespaces": ["vision"]}],
     'ai-platform:cluster.accessEntries[0].namespaces = ["vision"]: cannot scope clusterAdmin to namespaces; use '
     "admin or edit for namespaced access"),
    ([{"principalArn": CI, "accessPolicy": "root"}],
     'ai-platform:cluster.accessEntries[0].accessPolicy = "root": must be one of: clusterAdmin, admin, edit, view'),
    ([{"principalArn": CI, "accessPolicy": "view"}, {"principalArn": CI, "accessPolicy": "edit"}],
     f"each principal may have one access entry; repeated: {CI}"),
], ids=["scoped cluster admin", "unknown policy", "duplicate principal"])
def test_access_entry_mistakes_are_config_errors(entries, expected):
    found = problems(platform(cluster={"privateAccessCidrs": ["10.64.0.0/16"], "accessEntries": entries}))
    assert len(found) == 1 and found[0].endswith(expected.split(" = ", 1)[-1] if " = " in expected else expected)


def test_access_entries_map_to_eks_access_policies():
    viewer = AccessEntryConfig(principal_arn="arn:aws:iam::123456789012:role/ops/auditor", access_policy="view",
                               namespaces=("vision",))
    assert access_policy_arn("aws", "view") == "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy"
    assert access_policy_arn("aws-us-gov", "clusterAdmin") == \
        "arn:aws-us-gov:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
    assert access_scope(viewer) == {"type": "namespace", "namespaces": ["vision"]}
    assert access_scope(AccessEntryConfig(principal_arn=CI, access_policy="admin")) == {"type": "cluster"}
    assert entry_suffix(viewer.principal_arn).startswith("role-ops-auditor-")
    # Principals that read the same still get resources of their own.
    assert entry_suffix(f"{CI}.a") != entry_suffix(f"{CI}-a")


def test_quota_in_a_team_stack_points_to_its_new_home():
    values = {"aws:region": "us-east-1", "ai-platform:environment": "dev", "ai-platform:costCenter": "v",
              "ai-platform:dataClassification": "internal", "ai-platform:team": "vision",
              "ai-platform:platformStack": "acme/ai-platform/dev",
              "ai-platform:quota": json.dumps({"gpu": 8})}
    assert problems(values, "vision-dev") == [
        'ai-platform:quota = {"gpu": 8}: moved to the platform stack: set it as teams[].quota there (the platform '
        "owns every team's guardrails; see docs/team-onboarding.md)"]


# -- a team stack on a platform that did not onboard the team, or gave it too few GPUs -------------------------

def _edit_platform(project: Path, edit) -> None:
    path = project / "stacks" / "Pulumi.dev.yaml"
    data = yaml.safe_load(path.read_text())
    edit(data["config"])
    path.write_text(yaml.safe_dump(data))


@pytest.mark.integration
def test_team_stack_of_a_team_the_platform_never_onboarded_is_a_config_error(scratch_project: Path):
    _edit_platform(scratch_project, lambda config: config.pop("ai-platform:teams"))
    run = aip("preview", "--stack", "vision-dev", "--no-package", cwd=scratch_project)
    assert run.returncode == 2, run.stderr
    assert run.stderr.strip().endswith('ai-platform:team = "vision": is not onboarded on acme/ai-platform/dev: add it '
                                       "to that stack's `teams` (onboarded: none)")
    assert "Traceback" not in run.stderr


def test_a_team_misconfigured_for_its_platform_registers_no_cloud_or_cluster_resource(scratch_project: Path,
                                                                                    packaged_models: None):
    from infra.preview import Project
    from infra.preview.runner import ProgramError, run_preview

    # vision-dev lets digits idle at zero; a platform that forbids it is only known from the platform's outputs.
    _edit_platform(scratch_project, lambda config: config["ai-platform:autoscaling"].update(scaleToZero=False))
    with pytest.raises(ProgramError) as caught:
        run_preview("vision-dev", Project.load(scratch_project))
    assert isinstance(caught.value.cause, ConfigError)
    assert "autoscaling.min" in str(caught.value.cause)
    custom = sorted(r.type for r in caught.value.resources if r.custom)
    assert custom == ["pulumi:pulumi:StackReference"]


@pytest.mark.integration
def test_models_beyond_the_team_quota_on_the_platform_are_a_config_error(scratch_project: Path):
    _edit_platform(scratch_project, lambda config: config["ai-platform:teams"][0]["quota"].update(gpu=1))
    run = aip("preview", "--stack", "vision-dev", "--no-package", cwd=scratch_project)
    assert run.returncode == 2, run.stderr
    assert run.stderr.strip().endswith('ai-platform:models = ["digits"]: need up to 2 GPUs at maxReplicas, more '
                                       "than the team's GPU quota on acme/ai-platform/dev (1)")


def test_a_team_ci_principal_is_not_also_a_cluster_access_entry():
    found = problems(platform(cluster={"privateAccessCidrs": ["10.64.0.0/16"],
                                       "accessEntries": [{"principalArn": CI, "accessPolicy": "view"}]}))
    assert [line.rsplit("}]: ", 1)[1] for line in found] == [
        f"a team's CI principal gets its access entry from the team; remove it from cluster.accessEntries: {CI}"]


def test_a_bad_access_entry_namespace_names_what_is_allowed():
    found = problems(platform(cluster={"privateAccessCidrs": ["10.64.0.0/16"], "accessEntries": [
        {"principalArn": CI + "-ops", "accessPolicy": "view", "namespaces": ["monitoring", "Vision!"]}]}))
    assert found == ['ai-platform:cluster.accessEntries[0].namespaces[1] = "Vision!": must be a namespace name: a '
                     "lowercase DNS label of at most 63 characters"]


@pytest.mark.integration
@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_namespace_the_platform_runs_in_is_reserved_from_team_names(preview, stack):
    from infra.config.fields import RESERVED_NAMESPACES

    result = preview(stack)
    teams = set(plain(result.outputs)["teams"])
    used = {r.inputs.get("namespace") for r in result.of_type("kubernetes:helm.sh/v3:Release")}
    used |= {(r.inputs.get("metadata") or {}).get("namespace") for r in result.resources
             if r.type.startswith("kubernetes:") and not r.type.startswith("kubernetes:helm.sh/")}
    used |= {(r.inputs.get("metadata") or {}).get("name") for r in result.of_type("kubernetes:core/v1:Namespace")}
    platform_namespaces = {n for n in used if n} - teams
    assert platform_namespaces
    assert {n for n in platform_namespaces if not n.startswith("kube-")} <= set(RESERVED_NAMESPACES)


@pytest.mark.integration
def test_team_namespaces_are_protected_outside_dev(preview):
    def protected(stack: str) -> bool:
        namespace = next(r for r in preview(stack).of_type("kubernetes:core/v1:Namespace")
                         if r.inputs["metadata"]["name"] == "vision")
        return namespace.options["protect"]

    assert (protected("dev"), protected("prod")) == (False, True)


@pytest.mark.integration
def test_a_team_stack_charging_another_cost_center_than_its_onboarding_is_a_config_error(scratch_project: Path):
    _edit_platform(scratch_project, lambda config: config["ai-platform:teams"][0].update(costCenter="vision-rd"))
    run = aip("preview", "--stack", "vision-dev", "--no-package", cwd=scratch_project)
    assert run.returncode == 2, run.stderr
    assert run.stderr.strip().endswith('ai-platform:costCenter = "vision-ml": differs from the cost center '
                                       "acme/ai-platform/dev onboarded the team with (vision-rd): the team's namespace "
                                       "and its models would be charged to two cost centers")


@pytest.mark.parametrize(("pools", "teams", "expected"), [
    # One 8-GPU node shared, nothing dedicated: a quota of 512 cannot be met.
    ([{"name": "h100", "instanceTypes": ["p5.48xlarge"], "maxSize": 1}],
     [{"name": "vision", "costCenter": "v", "ciPrincipalArn": CI, "quota": {"gpu": 512}}],
     ["ai-platform:teams[0].quota.gpu = 512: 512 GPUs is more than the pools team vision may use surely hold at "
      "maxSize (8: h100 8; each pool counted with its smallest instance type)"]),
    # A pool dedicated to another team does not count for this one.
    ([{"name": "l4", "instanceTypes": ["g6.xlarge"], "maxSize": 2},
      {"name": "h100", "instanceTypes": ["p5.48xlarge"], "maxSize": 2, "dedicatedTeam": "search"}],
     [{"name": "vision", "costCenter": "v", "ciPrincipalArn": CI, "quota": {"gpu": 3}},
      {"name": "search", "costCenter": "s", "ciPrincipalArn": CI + "-search", "quota": {"gpu": 20}}],
     ["ai-platform:teams[0].quota.gpu = 3: 3 GPUs is more than the pools team vision may use surely hold at "
      "maxSize (2: l4 2; each pool counted with its smallest instance type)",
      "ai-platform:teams[1].quota.gpu = 20: 20 GPUs is more than the pools team search may use surely hold at "
      "maxSize (18: l4 2, h100 16; each pool counted with its smallest instance type)"]),
], ids=["one team", "two teams"])
def test_a_team_quota_beyond_the_gpus_its_pools_hold_is_a_config_error(pools, teams, expected):
    found = [line if "= [{" not in line else _shorten(line) for line in problems(platform(gpuPools=pools,
                                                                                             teams=teams))]
    assert found == expected


def test_a_quota_the_pools_can_hold_passes():
    pools = [{"name": "h100", "instanceTypes": ["p5.48xlarge"], "maxSize": 2, "dedicatedTeam": "vision"}]
    teams = [{"name": "vision", "costCenter": "v", "ciPrincipalArn": CI, "quota": {"gpu": 16}}]
    config = parse_stack_config(platform(gpuPools=pools, teams=teams), project="ai-platform", stack="dev")
    assert config.gpu_pools[0].max_gpus == 16


def test_a_pool_dedicated_to_a_team_is_checked_when_no_team_is_listed():
    values = platform(gpuPools=[{"name": "h100", "instanceTypes": ["p5.48xlarge"], "maxSize": 1,
                                 "dedicatedTeam": "search"}])
    values.pop("ai-platform:teams")
    assert problems(values) == ["ai-platform:teams = (not set): dedicate pools to onboarded teams only; not in "
                                "`teams`: h100 (dedicatedTeam 'search'); onboarded: none"]
