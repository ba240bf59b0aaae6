"""GPU capacity config: provisioner, capacity types, sharing, scale-to-zero and model autoscaling, each mistake
reported with its key, its value and what is allowed."""

from __future__ import annotations

from typing import Any

import pytest

from infra.config import ConfigError, parse_stack_config
from infra.config.capacity import DEFAULT_WAKE_SCHEDULE
from infra.config.cron import cron_problem
from infra.gpu_catalog import GPU_FAMILIES, mig_profiles
from tests.infra.test_config import platform, problems, team


def pool(**overrides: Any) -> dict[str, Any]:
    return {"name": "l4", "instanceTypes": ["g6.xlarge"], "maxSize": 2, **overrides}


def parsed_pool(**overrides: Any):
    return parse_stack_config(platform(gpuPools=[pool(**overrides)]), project="ai-platform", stack="dev").gpu_pools[0]


def test_a_pool_is_managed_and_on_demand_unless_it_says_otherwise():
    found = parsed_pool()
    assert (found.provisioner, found.capacity_types, found.capacity_type) == ("managed", ("ON_DEMAND",), "ON_DEMAND")
    assert found.sharing.mode == "none" and found.slices_per_gpu == 1


def test_capacity_type_and_capacity_types_say_the_same():
    assert parsed_pool(capacityType="SPOT").capacity_types == ("SPOT",)
    mixed = parsed_pool(provisioner="karpenter", capacityTypes=["SPOT", "ON_DEMAND"])
    assert mixed.capacity_type == "SPOT" and mixed.karpenter_capacity_types == ["spot", "on-demand"]


def test_time_slicing_multiplies_what_a_quota_may_count_but_not_the_budget():
    shared = parsed_pool(provisioner="karpenter", instanceTypes=["g6.xlarge", "g6.12xlarge"], maxSize=3,
                         sharing={"mode": "time-slicing", "replicas": 4})
    assert shared.max_gpus == 12  # the budget: physical GPUs of the largest type
    assert shared.sure_gpus == 3 and shared.sure_gpu_slices == 12  # the quota: slices of the smallest type


def test_mig_counts_the_instances_of_its_profile():
    h100 = parsed_pool(provisioner="karpenter", instanceTypes=["p5.48xlarge"], maxSize=1,
                       sharing={"mode": "mig", "migProfile": "3g.40gb"})
    assert h100.slices_per_gpu == 2 and h100.sure_gpu_slices == 16


def test_every_mig_family_has_profiles_and_the_others_none():
    with_mig = {f.family for f in GPU_FAMILIES.values() if f.mig_profiles}
    assert with_mig == {"p4d", "p4de", "p5", "p5e", "p5en"}
    assert mig_profiles("g6.xlarge") == {} and mig_profiles("p4d.24xlarge")["1g.5gb"] == 7


BAD_POOLS = [
    ("managed pool mixing capacity types", pool(capacityTypes=["SPOT", "ON_DEMAND"]),
     ['ai-platform:gpuPools[0].capacityTypes = ["SPOT", "ON_DEMAND"]: a managed pool has exactly one capacity type, '
      "ON_DEMAND or SPOT; mixing them, or RESERVED, needs provisioner: karpenter"]),
    ("both capacity keys", pool(capacityType="SPOT", capacityTypes=["SPOT"]),
     ['ai-platform:gpuPools[0].capacityTypes = ["SPOT"]: give either capacityType (one) or capacityTypes, not both']),
    ("unknown capacity type", pool(provisioner="karpenter", capacityTypes=["SPOT", "spot"]),
     ['ai-platform:gpuPools[0].capacityTypes[1] = "spot": must be one of: ON_DEMAND, SPOT, RESERVED']),
    ("karpenter keys on a managed pool", pool(expireAfter="24h"),
     ['ai-platform:gpuPools[0].expireAfter = "24h": is only used by karpenter pools (provisioner: karpenter)']),
    ("reserved without reservations", pool(provisioner="karpenter", capacityTypes=["RESERVED", "ON_DEMAND"]),
     ["ai-platform:gpuPools[0].capacityReservationIds = (not set): must list the capacity reservations (cr-...) that "
      "capacity type RESERVED launches into"]),
    ("desired size on karpenter", pool(provisioner="karpenter", desiredSize=1),
     ["ai-platform:gpuPools[0].desiredSize = 1: is only used by managed pools (Karpenter sizes a pool by its pending "
      "pods; minSize is its floor)"]),
    ("bad duration", pool(provisioner="karpenter", expireAfter="30 days"),
     ['ai-platform:gpuPools[0].expireAfter = "30 days": must be a duration: whole numbers of s, m or h, such as 30s, '
      "10m, 720h or 1h30m, or Never"]),
    ("time-slicing without replicas", pool(sharing={"mode": "time-slicing"}),
     ['ai-platform:gpuPools[0].sharing.replicas = (not set): is required with mode time-slicing (slices per GPU, '
      "2 to 16)"]),
    ("too many time slices", pool(sharing={"mode": "time-slicing", "replicas": 64}),
     ["ai-platform:gpuPools[0].sharing.replicas = 64: must be at most 16"]),
    ("MIG on a managed pool", pool(instanceTypes=["p5.48xlarge"], sharing={"mode": "mig", "migProfile": "1g.10gb"}),
     ['ai-platform:gpuPools[0].sharing.mode = "mig": mig needs provisioner: karpenter (its nodes partition their GPUs '
      "at boot, before the kubelet starts); a managed pool may time-slice"]),
    ("MIG on a GPU without MIG", pool(provisioner="karpenter", sharing={"mode": "mig", "migProfile": "1g.10gb"}),
     ['ai-platform:gpuPools[0].sharing.mode = "mig": nvidia-l4 has no MIG; MIG needs one of the families p4d, p4de, '
      "p5, p5e, p5en; share it with time-slicing instead"]),
    ("MIG profile of another GPU",
     pool(provisioner="karpenter", instanceTypes=["p4d.24xlarge"], sharing={"mode": "mig", "migProfile": "1g.10gb"}),
     ['ai-platform:gpuPools[0].sharing.migProfile = "1g.10gb": is not a MIG profile of nvidia-a100; allowed: 1g.5gb, '
      "2g.10gb, 3g.20gb, 4g.20gb, 7g.40gb"]),
]


@pytest.mark.parametrize("entry, expected", [c[1:] for c in BAD_POOLS], ids=[c[0] for c in BAD_POOLS])
def test_bad_pool_is_reported_with_key_value_and_what_is_allowed(entry, expected):
    assert problems(platform(gpuPools=[entry])) == expected


def test_quota_counts_the_slices_of_shared_pools():
    teams = [{"name": "vision", "ciPrincipalArn": "arn:aws:iam::123456789012:role/ci", "costCenter": "vision-ml",
              "quota": {"gpu": 8}}]
    shared = pool(provisioner="karpenter", maxSize=2, sharing={"mode": "time-slicing", "replicas": 4})
    parse_stack_config(platform(gpuPools=[shared], teams=teams), project="ai-platform", stack="dev")
    found = problems(platform(gpuPools=[pool(maxSize=2)], teams=teams))
    assert len(found) == 1 and "8 GPUs is more than the pools team vision may use surely hold at maxSize (2" in found[0]


def test_scale_to_zero_is_a_dev_default_and_never_prod():
    def scale_to_zero(environment: str, **overrides: Any) -> bool:
        values = platform(environment=environment, **overrides)
        return parse_stack_config(values, project="ai-platform", stack=environment).autoscaling.scale_to_zero

    assert scale_to_zero("dev") is True
    assert scale_to_zero("staging") is False
    assert scale_to_zero("staging", autoscaling={"scaleToZero": True}) is True
    found = problems(platform(environment="prod", autoscaling={"scaleToZero": True}), "prod")
    assert 'ai-platform:autoscaling.scaleToZero = true: must be false in prod' in "\n".join(found)


def model(**overrides: Any) -> dict[str, Any]:
    return {"name": "digits", **overrides}


def parsed_model(**overrides: Any):
    return parse_stack_config(team(models=[model(**overrides)]), project="ai-platform", stack="vision-dev").models[0]


def test_legacy_keys_are_the_hpa_fallback():
    legacy = parsed_model(minReplicas=2, maxReplicas=4, scaleTarget=60).scaling
    assert (legacy.metric, legacy.target, legacy.min, legacy.max, legacy.uses_keda) == ("cpu", 60, 2, 4, False)


def test_a_model_at_zero_gets_a_wake_schedule():
    idle = parsed_model(autoscaling={"metric": "concurrency", "target": 2, "min": 0, "max": 2}).scaling
    assert idle.uses_keda and idle.wake_schedule.model_dump(by_alias=True) == DEFAULT_WAKE_SCHEDULE
    floor = parsed_model(autoscaling={"metric": "requests-per-second", "target": 12.5, "min": 1, "max": 2}).scaling
    assert floor.wake_schedule is None and floor.target == 12.5


BAD_MODELS = [
    ("legacy keys beside autoscaling", model(minReplicas=1, autoscaling={"metric": "cpu", "target": 70}),
     ['ai-platform:models[0].autoscaling = {"metric": "cpu", "target": 70}: replaces minReplicas; give '
      "autoscaling.min, max, metric and target instead"]),
    ("HPA cannot idle at zero", model(autoscaling={"metric": "cpu", "target": 70, "min": 0}),
     ["ai-platform:models[0].autoscaling.min = 0: must be at least 1 with metric cpu (an HPA never scales to zero; "
      "scale on concurrency or requests-per-second to idle at zero)"]),
    ("metric of the other runtime", model(autoscaling={"metric": "p95-latency-ms", "target": 200}),
     ['ai-platform:models[0].autoscaling.metric = "p95-latency-ms": p95-latency-ms is exported by the kserve runtime '
      "only; this model runs on torchserve (concurrency and requests-per-second work on both)"]),
    ("max below min", model(autoscaling={"metric": "concurrency", "target": 2, "min": 3, "max": 2}),
     ["ai-platform:models[0].autoscaling.max = 2: must be at least min (3)"]),
    ("zero target", model(autoscaling={"metric": "concurrency", "target": 0}),
     ["ai-platform:models[0].autoscaling.target = 0: must be at least 0.001"]),
    ("bad cron", model(autoscaling={"metric": "concurrency", "target": 2, "min": 0,
                                    "wakeSchedule": {"start": "7am", "end": "0 19 * * *"}}),
     ['ai-platform:models[0].autoscaling.wakeSchedule.start = "7am": has 1 fields; a cron schedule has five (minute '
      "hour day-of-month month day-of-week), such as `0 7 * * 1-5` (07:00, Monday to Friday)"]),
    ("bad time zone", model(autoscaling={"metric": "concurrency", "target": 2, "min": 0, "wakeSchedule": {
        "start": "0 7 * * *", "end": "0 19 * * *", "timezone": "Mars/Olympus"}}),
     ['ai-platform:models[0].autoscaling.wakeSchedule.timezone = "Mars/Olympus": must be an IANA time zone such as UTC '
      "or Europe/Berlin"]),
    ("schedule without idling", model(autoscaling={"metric": "concurrency", "target": 2, "min": 1, "wakeSchedule": {
        "start": "0 7 * * *", "end": "0 19 * * *"}}),
     ['ai-platform:models[0].autoscaling.wakeSchedule = {"start": "0 7 * * *", "end": "0 19 * * *"}: is only used '
      "with min 0 (the model never idles otherwise)"]),
]


@pytest.mark.parametrize("entry, expected", [c[1:] for c in BAD_MODELS], ids=[c[0] for c in BAD_MODELS])
def test_bad_autoscaling_is_reported_with_key_value_and_what_is_allowed(entry, expected):
    assert problems(team(models=[entry]), "vision-dev") == expected


def test_every_problem_of_a_pool_is_reported_at_its_own_key():
    careless = pool(capacityTypes=["SPOT", "RESERVED"], expireAfter="24h", consolidation={"policy": "WhenEmpty"},
                    instanceTypes=["p5.48xlarge"], sharing={"mode": "mig", "migProfile": "1g.10gb"})
    assert [line.split(" = ")[0] for line in problems(platform(gpuPools=[careless]))] == [
        "ai-platform:gpuPools[0].capacityTypes", "ai-platform:gpuPools[0].consolidation",
        "ai-platform:gpuPools[0].expireAfter", "ai-platform:gpuPools[0].sharing.mode"]


@pytest.mark.parametrize("schedule, problem", [
    ("0 7 * * 1-5", None), ("*/15 8-18 ? JAN-MAR MON,WED,FRI", None), ("30 6 1,15 * *", None),
    ("61 7 * * *", "minute `61` is outside 0-59"), ("0 24 * * *", "hour `24` is outside 0-23"),
    ("0 7 0 * *", "day-of-month `0` is outside 1-31"), ("0 7 * 13 *", "month `13` is outside 1-12 or JAN-DEC"),
    ("0 7 * * 7", "day-of-week `7` is outside 0-6 or SUN-SAT"), ("0 7 * * 5-1", "day-of-week `5-1` runs backwards"),
    ("*/0 7 * * *", "minute `*/0` steps by 0"), ("? 7 * * *", "minute may not be `?`"),
    ("*/99999999999999999999 7 * * *", "minute `*/99999999999999999999` steps by more than 60"),
    ("0 7 * * 1-5 2027", "has 6 fields"), ("0 7 * * mon-fri!", "day-of-week `mon-fri!` is not `*`"),
])
def test_wake_schedules_are_checked_as_keda_parses_them(schedule, problem):
    found = cron_problem(schedule)
    assert (found is None) if problem is None else (found is not None and found.startswith(problem)), found


@pytest.mark.parametrize("target", [float("inf"), float("nan"), -1, True])
def test_a_target_is_a_finite_positive_number(target):
    found = problems(team(models=[model(autoscaling={"metric": "concurrency", "target": target})]), "vision-dev")
    assert len(found) == 1 and found[0].startswith("ai-platform:models[0].autoscaling.target"), found


# -- hostile and careless values ---------------------------------------------------------------------------------

KARPENTER = {"provisioner": "karpenter"}
DURATION_RULE = "must be a duration: whole numbers of s, m or h, such as 30s, 10m, 720h or 1h30m"
LONGEST = "must be at most 2562047h (the longest duration Karpenter can read)"

CARELESS_POOLS = [
    ("grace period of Never", pool(**KARPENTER, terminationGracePeriod="Never"),
     [f'ai-platform:gpuPools[0].terminationGracePeriod = "Never": {DURATION_RULE} (Never is not allowed here)']),
    ("no grace period at all", pool(**KARPENTER, terminationGracePeriod="0s"),
     ['ai-platform:gpuPools[0].terminationGracePeriod = "0s": must be at least 1m (a serving pod\'s own drain takes '
      "up to 45s, and longer with its response timeout)"]),
    ("nodes expiring at once", pool(**KARPENTER, expireAfter="0s"),
     ['ai-platform:gpuPools[0].expireAfter = "0s": must be at least 1h (a node expiring sooner is replaced before it '
      "has served much), or Never"]),
    ("duration beyond Go's", pool(**KARPENTER, expireAfter="99999999999999999999h"),
     [f'ai-platform:gpuPools[0].expireAfter = "99999999999999999999h": {LONGEST}']),
    ("consolidation after a negative time", pool(**KARPENTER, consolidation={"after": "-5m"}),
     [f'ai-platform:gpuPools[0].consolidation.after = "-5m": {DURATION_RULE}, or Never']),
    ("RESERVED on a managed pool", pool(capacityType="RESERVED"),
     ['ai-platform:gpuPools[0].capacityType = "RESERVED": RESERVED (capacity reservations) needs provisioner: '
      "karpenter; a managed pool is ON_DEMAND or SPOT"]),
    ("a reservation twice", pool(**KARPENTER, capacityTypes=["RESERVED"],
                                 capacityReservationIds=["cr-0123456789abcdef0", "cr-0123456789abcdef0"]),
     ['ai-platform:gpuPools[0].capacityReservationIds = ["cr-0123456789abcdef0", "cr-0123456789abcdef0"]: lists a '
      "capacity reservation twice: cr-0123456789abcdef0"]),
    ("not a reservation ID", pool(**KARPENTER, capacityTypes=["RESERVED"], capacityReservationIds=["cr-"]),
     ['ai-platform:gpuPools[0].capacityReservationIds[0] = "cr-": must be a capacity reservation ID such as '
      "cr-0123456789abcdef0"]),
    ("two sharing mistakes", pool(**KARPENTER, instanceTypes=["p5.48xlarge"], sharing={"mode": "mig", "replicas": 4}),
     ["ai-platform:gpuPools[0].sharing.replicas = 4: is only used with mode time-slicing",
      "ai-platform:gpuPools[0].sharing.migProfile = (not set): is required with mode mig (e.g. 1g.10gb)"]),
]


@pytest.mark.parametrize("entry, expected", [c[1:] for c in CARELESS_POOLS], ids=[c[0] for c in CARELESS_POOLS])
def test_careless_pool_values_are_reported_each_at_its_key(entry, expected):
    assert problems(platform(gpuPools=[entry])) == expected


@pytest.mark.parametrize("key", ["expireAfter", "terminationGracePeriod", "consolidation.after"])
def test_every_karpenter_duration_is_bounded_by_what_karpenter_can_read(key):
    fits, too_long = "2562047h", "2562048h"
    first, _, sub = key.partition(".")

    def entry(value: str) -> dict[str, Any]:
        return pool(**KARPENTER, **{first: {sub: value} if sub else value})

    parse_stack_config(platform(gpuPools=[entry(fits)]), project="ai-platform", stack="dev")
    expected = f'ai-platform:gpuPools[0].{key} = "{too_long}": {LONGEST}'
    assert problems(platform(gpuPools=[entry(too_long)])) == [expected]


CANARY_AT_1 = {"trafficPercent": 1, "stableVersion": "0123456789ab"}
CARELESS_MODELS = [
    ("a target KEDA reads as 0", model(autoscaling={"metric": "concurrency", "target": 1e-300}),
     ["ai-platform:models[0].autoscaling.target = 1e-300: must be at least 0.001"]),
    ("a target that overflows KEDA", model(autoscaling={"metric": "concurrency", "target": 1e300}),
     ["ai-platform:models[0].autoscaling.target = 1e+300: must be at most 1000000"]),
    ("same start and end", model(autoscaling={"metric": "concurrency", "target": 2, "min": 0, "wakeSchedule": {
        "start": "0 7 * * 1-5", "end": "0  7 * * 1-5"}}),
     ['ai-platform:models[0].autoscaling.wakeSchedule.end = "0  7 * * 1-5": must differ from start (KEDA\'s cron '
      "scaler refuses the same start and end)"]),
    ("the machine's own zone", model(autoscaling={"metric": "concurrency", "target": 2, "min": 0, "wakeSchedule": {
        "start": "0 7 * * *", "end": "0 19 * * *", "timezone": "localtime"}}),
     ['ai-platform:models[0].autoscaling.wakeSchedule.timezone = "localtime": must be an IANA time zone such as UTC '
      "or Europe/Berlin"]),
    ("a canary without room for both versions", model(
        canary=CANARY_AT_1, autoscaling={"metric": "concurrency", "target": 2, "min": 0, "max": 1}),
     ["ai-platform:models[0].autoscaling.max = 1: must be at least 2 with a canary (the stable and the canary version "
      "run a replica each)"]),
    ("a canary at one replica on the HPA", model(canary=CANARY_AT_1, minReplicas=1, maxReplicas=1),
     ["ai-platform:models[0].maxReplicas = 1: must be at least 2 with a canary (the stable and the canary version "
      "run a replica each)"]),
]


@pytest.mark.parametrize("entry, expected", [c[1:] for c in CARELESS_MODELS], ids=[c[0] for c in CARELESS_MODELS])
def test_careless_autoscaling_values_are_reported_each_at_its_key(entry, expected):
    assert problems(team(models=[entry]), "vision-dev") == expected


NUMBER_RULE = "must be a number (not a string, true or false, NaN or infinity)"
CANARY = {"trafficPercent": 10, "stableVersion": "0123456789ab"}


@pytest.mark.parametrize("value", ["0.1", True, None, float("nan"), float("inf"), [1]])
@pytest.mark.parametrize("key, entry", [
    ("autoscaling.target", lambda v: model(autoscaling={"metric": "concurrency", "target": v})),
    ("canary.analysis.maxErrorRatio", lambda v: model(canary={**CANARY, "analysis": {"maxErrorRatio": v}})),
    ("canary.analysis.maxErrorRatioIncrease", lambda v: model(canary={**CANARY, "analysis": {
        "maxErrorRatioIncrease": v}})),
    ("canary.analysis.maxLatencyRatio", lambda v: model(canary={**CANARY, "analysis": {"maxLatencyRatio": v}})),
], ids=["target", "maxErrorRatio", "maxErrorRatioIncrease", "maxLatencyRatio"])
def test_every_number_field_takes_finite_numbers_only_with_one_message_at_its_key(key, entry, value):
    [found] = problems(team(models=[entry(value)]), "vision-dev")
    assert found.startswith(f"ai-platform:models[0].{key} = ") and found.endswith(f": {NUMBER_RULE}"), found


def test_no_prod_model_idles_at_zero_even_before_its_platform_is_read():
    idle = {"metric": "concurrency", "target": 2, "min": 0, "max": 2}
    found = problems(team(environment="prod", platformStack="acme/ai-platform/prod", models=[model(autoscaling=idle)]),
                     "vision-prod")
    assert found == [("ai-platform:models[0].autoscaling.min = 0: must be at least 1 in prod: no prod platform lets "
                      "digits idle at zero replicas (autoscaling.scaleToZero is false in prod)")]
    staging = team(environment="staging", platformStack="acme/ai-platform/staging", models=[model(autoscaling=idle)])
    assert parse_stack_config(staging, project="ai-platform", stack="vision-staging").models[0].scaling.min == 0


# Every JSON type a careless edit can put under a key, and a couple of values that look right.
WRONG_TYPES = [None, True, 0, -1, 4.5, float("nan"), "", "x", [], ["SPOT"], [{"x": 1}], {}, {"a": 1}]
IDLE = {"metric": "concurrency", "target": 2, "min": 0, "max": 2,
        "wakeSchedule": {"start": "0 7 * * 1-5", "end": "0 19 * * 1-5", "timezone": "UTC"}}
FULL_POOL = pool(provisioner="karpenter", instanceTypes=["p5.48xlarge"], capacityTypes=["RESERVED", "SPOT"],
                 capacityReservationIds=["cr-0123456789abcdef0"], consolidation={"policy": "WhenEmpty", "after": "5m"},
                 expireAfter="720h", terminationGracePeriod="2h", sharing={"mode": "mig", "migProfile": "1g.10gb"},
                 minSize=0)
MANAGED_POOL = pool(capacityType="SPOT", minSize=1, desiredSize=1, rootVolumeGib=100,
                    sharing={"mode": "time-slicing", "replicas": 4})
FULL_MODEL = model(autoscaling=IDLE, canary={**CANARY, "analysis": {"maxErrorRatio": 0.02, "window": "10m"}})


def _paths(entry: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for key, value in entry.items():
        found.append((*prefix, key))
        if isinstance(value, dict):
            found += _paths(value, (*prefix, key))
    return found


def _with(entry: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    head, *rest = path
    return {**entry, head: _with(entry[head], tuple(rest), value) if rest else value}


def _parses_or_reports(values: dict[str, str], stack: str) -> None:
    try:
        parse_stack_config(values, project="ai-platform", stack=stack)
    except ConfigError as error:
        assert error.problems and all(p.key.startswith(("ai-platform:", "aws:")) for p in error.problems)


@pytest.mark.parametrize("entry, path", [(e, p) for e in (FULL_POOL, MANAGED_POOL) for p in _paths(e)],
                         ids=[f"{e.get('provisioner', 'managed')}:{'.'.join(p)}"
                              for e in (FULL_POOL, MANAGED_POOL) for p in _paths(e)])
def test_any_value_under_any_pool_key_is_a_config_error_not_a_crash(entry, path):
    parse_stack_config(platform(gpuPools=[entry]), project="ai-platform", stack="dev")
    for value in WRONG_TYPES:
        _parses_or_reports(platform(gpuPools=[_with(entry, path, value)]), "dev")
    _parses_or_reports(platform(gpuPools=[{k: v for k, v in entry.items() if k != path[0]}]), "dev")


@pytest.mark.parametrize("path", _paths(FULL_MODEL), ids=".".join)
def test_any_value_under_any_model_key_is_a_config_error_not_a_crash(path):
    parse_stack_config(team(models=[FULL_MODEL]), project="ai-platform", stack="vision-dev")
    for value in WRONG_TYPES:
        _parses_or_reports(team(models=[_with(FULL_MODEL, path, value)]), "vision-dev")


@pytest.mark.parametrize("key, stack, section", [
    ("autoscaling", "dev", {"scaleToZero": True}),
    ("recovery", "dev", {"region": "us-west-2", "replicationTimeControl": True}),
    ("recovery", "dev-dr", {"restoreFrom": "acme/ai-platform/dev"})])
def test_any_value_in_the_platform_sections_is_a_config_error_not_a_crash(key, stack, section):
    for path in [(), *_paths(section)]:
        for value in WRONG_TYPES:
            _parses_or_reports(platform(**{key: _with(section, path, value) if path else value}), stack)
