"""Unusual but valid capacity, autoscaling, canary and recovery configs preview into resources that deploy.

Each case edits a copy of the shipped stacks (several edits at once, to keep the previews few), previews the
stacks it names with the real program, and requires what `aip preview` requires before a deploy: the program
runs, every deploy check passes and the policy pack, at the enforcement levels of each stack's environment,
blocks nothing; and a team's models can scale as far as they may without passing its namespace's GPU quota
(which the API server would enforce by refusing pods). Values the config models refuse are tested in
tests/infra/test_capacity_config.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.config import TeamConfig, parse_stack_config
from infra.graph_checks import run_deploy_checks
from infra.preview import PreviewResult, Project, ResourceRecord, run_preview
from infra.preview.policy_gate import evaluate
from policies.registry import ALL_POLICIES, PACK_NAME
from tests.graph_checks import conftest as graph_checks

ROOT = Path(__file__).resolve().parents[2]
# The deploy checks' fixtures: the pinned charts' values and the upstream CRDs (a skip, or under CI a failure).
charts_dir, crds_dir = graph_checks.charts_dir, graph_checks.crds_dir
Config = dict[str, Any]
Edit = Callable[[Config], None]

RESERVATION = "cr-0123456789abcdef0"
DIGITS_VERSION = "0123456789ab"
INFERENCE_SERVICE = "kubernetes:serving.kserve.io/v1beta1:InferenceService"
SCALED_OBJECT = "kubernetes:keda.sh/v1alpha1:ScaledObject"
KSERVE_IMAGE = "registry.example.com/vision/digits@sha256:" + "a" * 64


# -- edits of one stack's `config` mapping ----------------------------------------------------------------------

def pools(*entries: Mapping[str, Any]) -> Edit:
    def edit(config: Config) -> None:
        config["ai-platform:gpuPools"] = [dict(e) for e in entries]
    return edit


def region(name: str) -> Edit:
    def edit(config: Config) -> None:
        config["aws:region"] = name
    return edit


def quota(team: str, **values: Any) -> Edit:
    def edit(config: Config) -> None:
        for entry in config["ai-platform:teams"]:
            if entry["name"] == team:
                entry["quota"] = {**entry.get("quota", {}), **values}
    return edit


def setting(key: str, value: Any) -> Edit:
    def edit(config: Config) -> None:
        if value is None:
            config.pop(f"ai-platform:{key}", None)
        else:
            config[f"ai-platform:{key}"] = value
    return edit


def models(*entries: Mapping[str, Any]) -> Edit:
    return setting("models", [dict(e) for e in entries])


def team_stack(team: str, environment: str, platform_stack: str, *entries: Mapping[str, Any]) -> Config:
    """The config of a new team stack (a team stack file beside the shipped ones)."""
    return {"aws:region": "us-east-1", "ai-platform:environment": environment, "ai-platform:team": team,
            "ai-platform:costCenter": f"{team}-ml", "ai-platform:dataClassification": "confidential",
            "ai-platform:platformStack": f"acme/ai-platform/{platform_stack}",
            "ai-platform:models": [dict(e) for e in entries]}


def recovery_stack_of(stack: str, region: str, *, vpc_cidr: str) -> Config:
    """The recovery stack of a shipped platform stack, as prod-dr is prod's: its region, its own network."""
    config = yaml.safe_load((ROOT / "stacks" / f"Pulumi.{stack}.yaml").read_text())["config"]
    config = {k: v for k, v in config.items() if k not in ("ai-platform:modelStore", "ai-platform:recovery")}
    config["aws:region"] = region
    config["ai-platform:recovery"] = {"restoreFrom": f"acme/ai-platform/{stack}"}
    config["ai-platform:network"] = {**config["ai-platform:network"], "vpcCidr": vpc_cidr}
    return config


def gpu_model(name: str, pool: str, autoscaling: Mapping[str, Any] | None = None, gpu: int = 1,
              **extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, "resources": {"cpu": "2", "memory": "8Gi", "gpu": gpu}, "gpuPool": pool,
                             **extra}
    if autoscaling is not None:
        entry["autoscaling"] = dict(autoscaling)
    return entry


def scaling(metric: str, target: float, low: int, high: int, **extra: Any) -> dict[str, Any]:
    return {"metric": metric, "target": target, "min": low, "max": high, **extra}


def wake(timezone: str, start: str = "0 7 * * 1-5", end: str = "0 19 * * 1-5") -> dict[str, str]:
    return {"start": start, "end": end, "timezone": timezone}


# -- the cases --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    """Edits to stack files (or new ones), and the stacks to preview; a team stack brings its platform along."""

    edits: Mapping[str, Sequence[Edit]] = field(default_factory=dict)
    new_stacks: Mapping[str, Config] = field(default_factory=dict)
    previews: tuple[str, ...] = ()


KARPENTER_L4 = {"name": "inference-l4", "provisioner": "karpenter", "instanceTypes": ["g6.xlarge", "g6.2xlarge"],
                "maxSize": 2, "rootVolumeGib": 100}


def mig_pools(instance_type: str, profiles: Sequence[str], **extra: Any) -> list[dict[str, Any]]:
    """One karpenter pool per MIG profile of the instance type's GPU."""
    family = instance_type.split(".")[0]
    return [{"name": f"mig-{family}-{profile.replace('.', '-')}", "provisioner": "karpenter",
             "instanceTypes": [instance_type], "maxSize": 1, "sharing": {"mode": "mig", "migProfile": profile},
             **extra} for profile in profiles]


H100_PROFILES = ("1g.10gb", "1g.20gb", "2g.20gb", "3g.40gb", "4g.40gb", "7g.80gb")
A100_PROFILES = ("1g.5gb", "2g.10gb", "3g.20gb", "4g.20gb", "7g.40gb")
H200_PROFILES = ("1g.18gb", "1g.35gb", "2g.35gb", "3g.71gb", "4g.71gb", "7g.141gb")

CASES: dict[str, Case] = {
    # Reserved capacity only, time-sliced twice, never expiring, the shortest grace period; one model idles at
    # zero on the default schedule (no wakeSchedule) at the smallest target, one at the largest target and most
    # replicas with a half-hour time zone.
    "dev-reserved-only": Case(
        edits={"dev": [pools({**KARPENTER_L4, "capacityTypes": ["RESERVED"], "capacityReservationIds": [RESERVATION],
                              "sharing": {"mode": "time-slicing", "replicas": 2}, "expireAfter": "Never",
                              "terminationGracePeriod": "1m",
                              "consolidation": {"policy": "WhenEmpty", "after": "Never"}}),
                       quota("vision", pods=200)],
               "vision-dev": [models(gpu_model("digits", "inference-l4", scaling("requests-per-second", 0.001, 0, 1)),
                                     {"name": "ranker", "autoscaling": scaling(
                                         "queue-time-ms", 1_000_000, 0, 100, wakeSchedule=wake("America/St_Johns"))})]},
        previews=("vision-dev",)),
    # Three pools: on-demand with reservations sliced 16 ways and held at its maximum, a managed spot pool sliced
    # 16 ways, and a spot pool dedicated to the team; consolidation at once, the shortest expiry, the longest grace.
    "dev-several-pools": Case(
        edits={"dev": [pools({**KARPENTER_L4, "capacityTypes": ["ON_DEMAND", "RESERVED"],
                              "capacityReservationIds": [RESERVATION, "cr-0fedcba9876543210"], "minSize": 2,
                              "sharing": {"mode": "time-slicing", "replicas": 16}, "expireAfter": "1h",
                              "terminationGracePeriod": "48h",
                              "consolidation": {"policy": "WhenEmptyOrUnderutilized", "after": "0s"}},
                             {"name": "batch-a10g", "instanceTypes": ["g5.2xlarge"], "capacityType": "SPOT",
                              "minSize": 1, "maxSize": 1, "desiredSize": 1,
                              "sharing": {"mode": "time-slicing", "replicas": 16}},
                             {"name": "vision-l40s", "provisioner": "karpenter", "instanceTypes": ["g6e.xlarge"],
                              "capacityTypes": ["SPOT"], "maxSize": 1, "dedicatedTeam": "vision"}),
                       quota("vision", gpu=9)],
               "vision-dev": [models(gpu_model("digits", "vision-l40s", scaling("concurrency", 3, 1, 1)),
                                     gpu_model("ranker", "batch-a10g", scaling(
                                         "requests-per-second", 50, 0, 8, wakeSchedule=wake("Europe/Berlin"))))]},
        previews=("vision-dev",)),
    # Every MIG profile of the A100s (40 and 80 GB), one karpenter pool each.
    "dev-mig-a100": Case(
        edits={"dev": [pools(*mig_pools("p4d.24xlarge", A100_PROFILES), *mig_pools("p4de.24xlarge", H100_PROFILES)),
                       quota("vision", gpu=4)],
               "vision-dev": [models(gpu_model("digits", "mig-p4d-1g-5gb", scaling("concurrency", 2, 0, 2)),
                                     gpu_model("ranker", "mig-p4de-7g-80gb", scaling("concurrency", 1, 1, 2)))]},
        previews=("vision-dev",)),
    # Every MIG profile of the H200 (p5e and p5en), with spot capacity.
    "dev-mig-h200": Case(
        edits={"dev": [pools(*mig_pools("p5e.48xlarge", H200_PROFILES, capacityTypes=["SPOT"]),
                             *mig_pools("p5en.48xlarge", H200_PROFILES[:1], capacityTypes=["SPOT", "ON_DEMAND"]))]},
        previews=("dev",)),
    # Every MIG profile of the H100 in staging (mandatory policies), on its one-GPU size, within staging's budget.
    "staging-mig-h100": Case(
        edits={"staging": [pools({"name": "inference-l4", "instanceTypes": ["g6.xlarge"], "maxSize": 2},
                                 *mig_pools("p5.4xlarge", H100_PROFILES, minSize=0))]},
        previews=("staging",)),
    # Canaries at both ends of the traffic split, on models that idle at zero (with and without a wake schedule),
    # on a time-sliced pool.
    "dev-canary-at-zero": Case(
        edits={"dev": [quota("vision", gpu=4)],
               "vision-dev": [models(
            gpu_model("digits", "inference-l4", scaling("concurrency", 0.001, 0, 2),
                      canary={"trafficPercent": 1, "stableVersion": DIGITS_VERSION}),
            gpu_model("ranker", "inference-l4", scaling("requests-per-second", 1_000_000, 0, 2,
                                                        wakeSchedule=wake("America/St_Johns", "30 6 * * *",
                                                                          "30 22 * * *")),
                      canary={"trafficPercent": 99, "stableVersion": "fedcba9876543210"}))]},
        previews=("vision-dev",)),
    # The HPA metrics at their bounds, a pinned version, and a model on the CPU nodes.
    "dev-hpa-and-pins": Case(
        edits={"dev": [quota("vision", pods=200, cpu="400", memory="1600Gi")],
               "vision-dev": [models(gpu_model("digits", "inference-l4", scaling("cpu", 1, 1, 1),
                                               version=DIGITS_VERSION),
                                     {"name": "ranker", "resources": {"cpu": "2", "memory": "4Gi"},
                                      "autoscaling": scaling("memory", 100, 100, 100), "version": "f" * 64})]},
        previews=("vision-dev",)),
    # The kserve runtime: its latency metric at the smallest target idling at zero, and gRPC with concurrency.
    "dev-kserve-runtime": Case(
        edits={"dev": [quota("vision", gpu=3)],
               "vision-dev": [models(
            gpu_model("digits", "inference-l4", scaling("p95-latency-ms", 0.001, 0, 2), runtime="kserve",
                      image=KSERVE_IMAGE),
            gpu_model("ranker", "inference-l4", scaling("concurrency", 1_000_000, 1, 1), runtime="kserve",
                      protocol="grpc-v2", image=KSERVE_IMAGE.replace("digits", "ranker")))]},
        previews=("vision-dev",)),
    # prod: reserved beside on-demand, time-sliced, held at its maximum; a MIG pool dedicated to search beside its
    # managed one; canary at 99% in prod; a version pin on a MIG slice.
    "prod-capacity-and-canary": Case(
        edits={"prod": [pools({"name": "inference-l40s", "provisioner": "karpenter",
                               "instanceTypes": ["g6e.2xlarge", "g6e.4xlarge"],
                               "capacityTypes": ["ON_DEMAND", "RESERVED"], "capacityReservationIds": [RESERVATION],
                               "minSize": 4, "maxSize": 4, "sharing": {"mode": "time-slicing", "replicas": 2},
                               "consolidation": {"policy": "WhenEmptyOrUnderutilized", "after": "1h"},
                               "expireAfter": "1h", "terminationGracePeriod": "48h"},
                              {"name": "search-h100", "instanceTypes": ["p5.48xlarge"], "minSize": 0, "maxSize": 2,
                               "rootVolumeGib": 500, "dedicatedTeam": "search"},
                              {"name": "search-mig", "provisioner": "karpenter", "instanceTypes": ["p5.4xlarge"],
                               "capacityTypes": ["RESERVED"], "capacityReservationIds": ["cr-0fedcba9876543210"],
                               "minSize": 1, "maxSize": 1, "dedicatedTeam": "search",
                               "sharing": {"mode": "mig", "migProfile": "1g.10gb"}, "expireAfter": "2562047h"}),
                        quota("search", gpu=8)],
               "vision-prod": [models(gpu_model("digits", "inference-l40s", scaling("concurrency", 1_000_000, 1, 6),
                                                canary={"trafficPercent": 99, "stableVersion": DIGITS_VERSION}),
                                      gpu_model("ranker", "inference-l40s", scaling("requests-per-second", 0.001, 2, 2),
                                                canary={"trafficPercent": 1, "stableVersion": DIGITS_VERSION}))],
               "search-prod": [models(gpu_model("ranker", "search-mig", scaling("concurrency", 4, 2, 7),
                                                version=DIGITS_VERSION),
                                      gpu_model("digits", "search-h100", scaling("cpu", 100, 1, 1)))]},
        previews=("vision-prod", "search-prod")),
    # prod replicating to another approved region, RTC stated, and its recovery stack serving from there.
    "prod-recovery-elsewhere": Case(
        edits={"prod": [setting("recovery", {"region": "eu-west-1", "replicationTimeControl": True})],
               "prod-dr": [region("eu-west-1")],
               "vision-prod": [region("eu-west-1"), setting("platformStack", "acme/ai-platform/prod-dr")]},
        previews=("prod", "prod-dr", "vision-prod")),
    # dev and staging may replicate (optional there): dev best effort with its own recovery stack dev-dr, a team
    # moved onto it; staging with RTC.
    "dev-and-staging-recovery": Case(
        edits={"dev": [setting("recovery", {"region": "us-west-2"})],
               "staging": [setting("recovery", {"region": "eu-central-1", "replicationTimeControl": True})],
               "vision-dev": [region("us-west-2"), setting("platformStack", "acme/ai-platform/dev-dr")]},
        new_stacks={"dev-dr": recovery_stack_of("dev", "us-west-2", vpc_cidr="10.68.0.0/16")},
        previews=("dev", "staging", "dev-dr", "vision-dev")),
    # A team stack in staging, onboarded there, with models at zero replicas (scale-to-zero switched on).
    "staging-team-at-zero": Case(
        edits={"staging": [setting("autoscaling", {"scaleToZero": True}),
                           pools({"name": "inference-l4", "provisioner": "karpenter", "instanceTypes": ["g6.xlarge"],
                                  "capacityTypes": ["SPOT", "ON_DEMAND"], "maxSize": 4,
                                  "sharing": {"mode": "time-slicing", "replicas": 4}}),
                           quota("vision", gpu=8)]},
        new_stacks={"vision-staging": team_stack(
            "vision", "staging", "staging",
            gpu_model("digits", "inference-l4", scaling("concurrency", 2, 0, 4, wakeSchedule=wake("Asia/Kolkata")),
                      canary={"trafficPercent": 50, "stableVersion": DIGITS_VERSION}),
            gpu_model("ranker", "inference-l4", scaling("queue-time-ms", 250, 0, 4)))},
        previews=("vision-staging",)),
}


# -- running a case ---------------------------------------------------------------------------------------------

def write_case(scratch: Path, case: Case) -> Project:
    for stack, edits in case.edits.items():
        path = scratch / "stacks" / f"Pulumi.{stack}.yaml"
        data = yaml.safe_load(path.read_text())
        for edit in edits:
            edit(data["config"])
        path.write_text(yaml.safe_dump(data, sort_keys=False))
    for stack, config in case.new_stacks.items():
        (scratch / "stacks" / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump({"config": config}, sort_keys=False))
    return Project.load(scratch)


def pack_config(environment: str) -> dict[str, Any]:
    return json.loads((ROOT / "policies" / "config" / f"{environment}.json").read_text())


def _gpus_per_replica(isvc: ResourceRecord) -> int:
    predictor = isvc.inputs["spec"]["predictor"]
    container = predictor.get("model") or predictor["containers"][0]
    return int(container["resources"]["requests"].get("nvidia.com/gpu", 0))


def gpus_beyond_quota(team: PreviewResult, platform: PreviewResult) -> list[str]:
    """The GPUs the team's predictor Deployments may scale to, where more than its namespace's quota admits (the
    replicas past it would be refused by the API server, however the autoscaler asks)."""
    services = {r.inputs["metadata"]["name"]: r for r in team.of_type(INFERENCE_SERVICE)}
    namespace = next(iter(services.values())).inputs["metadata"]["namespace"] if services else None
    most = 0
    for isvc in services.values():
        if isvc.inputs["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] == "hpa":
            most += int(isvc.inputs["spec"]["predictor"]["maxReplicas"]) * _gpus_per_replica(isvc)
    for scaler in team.of_type(SCALED_OBJECT):
        target = scaler.inputs["spec"]["scaleTargetRef"]["name"]
        isvc = next(s for n, s in services.items() if target in (f"{n}-predictor", f"{n}-canary-predictor"))
        most += int(scaler.inputs["spec"]["maxReplicaCount"]) * _gpus_per_replica(isvc)
    quotas = [r for r in platform.of_type("kubernetes:core/v1:ResourceQuota")
              if r.inputs["metadata"]["namespace"] == namespace]
    allowed = sum(int(q.inputs["spec"]["hard"].get("requests.nvidia.com/gpu", 0)) for q in quotas)
    return [f"{team.stack}: models may scale to {most} GPUs; quota of namespace {namespace}: {allowed}"] \
        if most > allowed else []


def problems_of(stack: str, project: Project, cache: Mapping[str, PreviewResult], charts: Path,
                crds: Path) -> list[str]:
    """What would stop `aip preview` from letting this stack deploy: deploy-check findings, blocking policies."""
    values = project.stack_config(stack)
    config = parse_stack_config(values.values, project=project.name, stack=stack, secret_keys=values.secret_keys,
                                secure_paths=values.secure_paths)
    platform = cache[config.platform_stack.rsplit("/", 1)[-1]] if isinstance(config, TeamConfig) else None
    found = gpus_beyond_quota(cache[stack], platform) if platform is not None else []
    found += [f"{stack}: {f.render()}" for f in run_deploy_checks(cache[stack], config, platform=platform,
                                                                  charts_dir=charts, crds_dir=crds)]
    report = evaluate(cache[stack], ALL_POLICIES, pack=PACK_NAME, config=pack_config(config.environment))
    return found + [f"{stack}: {v.policy} {v.urn}: {v.message}" for v in report.blocking]


@pytest.mark.integration
@pytest.mark.parametrize("name", list(CASES))
def test_a_valid_config_previews_into_resources_that_deploy(name, scratch_project, packaged_models, charts_dir,
                                                            crds_dir):
    project = write_case(scratch_project, CASES[name])
    cache: dict[str, PreviewResult] = {}
    for stack in CASES[name].previews:
        cache[stack] = run_preview(stack, project, cache=cache)
    assert all(not result.warnings for result in cache.values()), {s: r.warnings for s, r in cache.items()}
    found = [p for stack in cache for p in problems_of(stack, project, cache, charts_dir, crds_dir)]
    assert found == []
