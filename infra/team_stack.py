"""A team stack: what a team decides (its models, canaries and PodMonitors), on top of a platform stack it reads
but never changes.

The platform onboards the team (namespace, quota, limits, network policies, serving role, CI access); the
team stack runs with rights confined to that namespace.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.components.inference_service import ModelService, ModelServiceArgs
from infra.components.team_monitoring import TeamMonitoring, TeamMonitoringArgs
from infra.components.team_workspace import model_prefix
from infra.config import ConfigError, Problem, TeamConfig, stack_file
from infra.config.serving import ModelDeployment
from infra.platform_outputs import PlatformReference
from infra.serving.catalog import MODEL_HANDLERS, Catalog
from infra.serving.manifest import PackagedModel, load_manifest, manifest_path
from infra.serving.problems import ServingError
from infra.tagging import register_tagging


def _one_slice_of_shared(config: TeamConfig, index: int, model: ModelDeployment,
                         pool: dict[str, Any]) -> dict[str, Any]:
    """A replica on a pool that shares its GPUs asks for one slice: the device plugin refuses more than one
    time-slice (it would add no compute), and one MIG instance is the unit the pool is partitioned into."""
    sharing = pool.get("sharing") or {}
    mode = sharing.get("mode", "none")
    if mode != "none" and model.resources.gpu != 1:
        offered = (f"time-slices (1/{int(sharing.get('slicesPerGpu', 1))} of a {pool.get('gpuType')})"
                   if mode == "time-slicing"
                   else f"MIG instances {sharing.get('migProfile')} of a {pool.get('gpuType')}")
        raise ConfigError(stack_file(config.stack), [Problem(
            f"ai-platform:models[{index}].resources.gpu",
            f"pool {pool['name']} shares its GPUs as {offered}: a replica asks for exactly 1 (one slice); for a "
            "whole GPU or several, use a pool without sharing", model.resources.gpu)])
    return pool


def allowed_pool(config: TeamConfig, index: int, model: ModelDeployment,
                 pools: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The platform's pool a model asked for, if the team may use it (shared, or dedicated to the team)."""
    if not model.gpu_pool:
        return None
    usable = [p for p in pools if p.get("dedicatedTeam", "") in ("", config.team)]
    for pool in usable:
        if pool["name"] == model.gpu_pool:
            return _one_slice_of_shared(config, index, model, pool)
    names = ", ".join(p["name"] for p in usable) or "none"
    raise ConfigError(stack_file(config.stack), [Problem(
        f"ai-platform:models[{index}].gpuPool",
        f"is not a GPU pool of {config.platform_stack} this team may use; allowed: {names}", model.gpu_pool)])


def onboarding(config: TeamConfig, teams: dict[str, Any]) -> dict[str, Any]:
    """The platform's onboarding of this team; a config error when it is missing or too small for the models."""
    if config.team not in teams:
        onboarded = ", ".join(sorted(teams)) or "none"
        raise ConfigError(stack_file(config.stack), [Problem(
            "ai-platform:team", f"is not onboarded on {config.platform_stack}: add it to that stack's `teams` "
                                f"(onboarded: {onboarded})", config.team)])
    team = teams[config.team]
    if team.get("costCenter", config.cost_center) != config.cost_center:
        raise ConfigError(stack_file(config.stack), [Problem(
            "ai-platform:costCenter", f"differs from the cost center {config.platform_stack} onboarded the team with "
                                      f"({team['costCenter']}): the team's namespace and its models would be charged "
                                      "to two cost centers", config.cost_center)])
    quota = int(team["quota"]["gpu"])
    if config.gpus_at_max_replicas > quota:
        raise ConfigError(stack_file(config.stack), [Problem(
            "ai-platform:models", f"need up to {config.gpus_at_max_replicas} GPUs at maxReplicas, more than the "
                                  f"team's GPU quota on {config.platform_stack} ({quota})",
            [m.name for m in config.models])])
    return team


def same_region(config: TeamConfig, region: str) -> str:
    """The platform's region, which must be the team stack's: its model archives upload to the platform's model store
    (a recovery stack's is the replica, in the recovery region), through the stack's AWS provider."""
    if region != config.region:
        raise ConfigError(stack_file(config.stack), [Problem(
            "aws:region", f"differs from the region of {config.platform_stack} ({region}), whose model store the "
                          f"team's models upload to: set aws:region to {region}", config.region)])
    return region


def scale_to_zero(config: TeamConfig, allowed: bool) -> bool:
    """Whether the platform lets models idle at zero replicas; a config error for each model that asks to where the
    platform does not (`autoscaling.scaleToZero` is false in staging and prod unless set, never true in prod)."""
    problems = [Problem(f"ai-platform:models[{index}].autoscaling.min",
                        f"lets {model.name} idle at zero replicas, which {config.platform_stack} does not allow (its "
                        "autoscaling.scaleToZero is false): keep at least 1 replica", 0)
                for index, model in enumerate(config.models) if model.scaling.min == 0 and not allowed]
    if problems:
        raise ConfigError(stack_file(config.stack), problems)
    return bool(allowed)


def packaged(config: TeamConfig) -> dict[str, PackagedModel]:
    """Packages of the team's torchserve models to upload; a clean error when `aip package` has not run.

    A model pinned to a stored `version` (`aip promote`, `aip rollback`) needs no package unless the pin is the
    packaged version: a rollback deploys without building anything.
    """
    models = {m.name: m for m in config.models if m.runtime == "torchserve"}
    needed = [name for name, model in models.items() if model.version is None]
    if not models:
        return {}
    try:
        packages = load_manifest(manifest_path()).models
    except ServingError as exc:
        if not needed:
            return {}
        raise pulumi.RunError(str(exc)) from None
    missing = [name for name in needed if name not in packages]
    if missing:
        raise pulumi.RunError(f"models not packaged: {', '.join(missing)}: run `aip package`")
    uploads = {name: packages[name] for name, model in models.items()
               if name in packages and model.version in (None, packages[name].version)}
    lost = [str(p) for package in uploads.values() for p in package.missing_files()]
    if lost:
        raise pulumi.RunError(f"packaged files are missing ({', '.join(lost)}): run `aip package`")
    return uploads


def build_team(config: TeamConfig) -> dict[str, Any]:
    """Create the team stack's resources and return its outputs."""
    packages = packaged(config)
    register_tagging(config.tags)
    prefix = f"aip-{config.team}-{config.environment}"
    platform = PlatformReference(f"{prefix}-platform", config.platform_stack)
    team = platform.require("teams").apply(lambda teams: onboarding(config, teams))
    zero_allowed = platform.require("scaleToZero").apply(lambda allowed: scale_to_zero(config, allowed))
    region = platform.require("region").apply(lambda r: same_region(config, r))
    checks = pulumi.Output.all(team, zero_allowed, region)

    def checked(name: str) -> pulumi.Output[Any]:
        # A platform output the team's resources read only once every check against the platform has passed: a
        # team misconfigured for its platform uploads nothing and sends nothing to the cluster before it fails.
        return pulumi.Output.all(platform.require(name), checks).apply(lambda v: v[0])

    # Objects without an explicit namespace land in the team's, never in another one.
    provider = k8s.Provider(f"{prefix}-k8s", kubeconfig=checked("kubeconfig"), namespace=config.team)
    TeamMonitoring(f"{prefix}-monitoring", TeamMonitoringArgs(team=config.team, provider=provider))
    pools = checked("gpuPools")
    services = {}
    for index, model in enumerate(config.models):
        pool = pools.apply(lambda p, i=index, m=model: allowed_pool(config, i, m, p)) if model.gpu_pool else None
        services[model.name] = ModelService(f"{prefix}-{model.name}", ModelServiceArgs(
            team=config.team, model=model, package=packages.get(model.name),
            bucket=checked("modelStoreBucket"), kms_key_arn=checked("modelStoreKmsKeyArn"),
            team_prefix=model_prefix(config.team), pool=pool, provider=provider,
            response_timeout_s=Catalog(MODEL_HANDLERS).load(model.name).config.response_timeout,
            prometheus_url=checked("prometheusUrl"), scale_to_zero_allowed=zero_allowed))
    return {
        "models": {name: service.storage_uri for name, service in services.items()},
        "team": config.team,
        "environment": config.environment,
        "namespace": team.apply(lambda t: t["namespace"]),
        "modelPrefix": pulumi.Output.concat("s3://", platform.require("modelStoreBucket"), "/",
                                            model_prefix(config.team)),
        "servingRoleArn": team.apply(lambda t: t["servingRoleArn"]),
        "clusterName": platform.require("clusterName"),
    }
