"""How GPU capacity is provisioned, shared and scaled: the pool settings Karpenter and the device plugin read, the
platform's scale-to-zero switch, and a model's autoscaling.

Durations use Karpenter's format (`30s`, `10m`, `720h`, `1h30m`); cron strings KEDA's cron scaler's five fields.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from infra.config.base import FrozenModel
from infra.config.cron import cron_problem
from infra.config.errors import problems_at_subkeys
from infra.config.fields import FiniteNumber, matching

# Karpenter's duration format: https://github.com/kubernetes-sigs/karpenter/blob/v1.14.1/pkg/apis/v1/nodepool.go
# (consolidateAfter and expireAfter also take `Never`; terminationGracePeriod does not).
_DURATION = re.compile(r"(([0-9]+)(s|m|h))+")
_DURATION_PART = re.compile(r"([0-9]+)(s|m|h)")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}
# Karpenter reads these into Go's time.Duration, nanoseconds in an int64: anything longer fails to parse.
MAX_DURATION_S = (2**63 - 1) // 10**9
DURATION_EXAMPLES = "30s, 10m, 720h or 1h30m"


def duration_seconds(value: str) -> int | None:
    """Seconds of a Karpenter duration such as `1h30m`; None when it is not one (`Never` included)."""
    if not _DURATION.fullmatch(value):
        return None
    return sum(int(number) * _UNIT_SECONDS[unit] for number, unit in _DURATION_PART.findall(value))


def _duration(*, never: bool, minimum_s: int, why: str = "") -> Callable[[str], str]:
    def check(value: str) -> str:
        if never and value == "Never":
            return value
        seconds = duration_seconds(value)
        if seconds is None:
            form = f"a duration: whole numbers of s, m or h, such as {DURATION_EXAMPLES}"
            raise ValueError(f"must be {form}{', or Never' if never else ' (Never is not allowed here)'}")
        if seconds < minimum_s:
            raise ValueError(f"must be at least {_shown(minimum_s)}{why}")
        if seconds > MAX_DURATION_S:
            raise ValueError(f"must be at most {MAX_DURATION_S // 3600}h (the longest duration Karpenter can read)")
        return value

    return check


def _shown(seconds: int) -> str:
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds % size == 0 and seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


# consolidateAfter: 0s (at once) is Karpenter's own default.
Duration = Annotated[StrictStr, AfterValidator(_duration(never=True, minimum_s=0))]
# A GPU node takes minutes to join and load its models; one replaced younger than an hour would mostly be starting.
ExpiryDuration = Annotated[StrictStr, AfterValidator(_duration(
    never=True, minimum_s=3600, why=" (a node expiring sooner is replaced before it has served much), or Never"))]
# Shorter than a serving pod's own drain (its preStop sleep, SIGTERM drain and margin; 45s for kserve) would cut
# every drain short, and 0s evicts at once, past the disruption budgets this period exists to bound.
GracePeriod = Annotated[StrictStr, AfterValidator(_duration(
    never=False, minimum_s=60, why=" (a serving pod's own drain takes up to 45s, and longer with its response "
                                   "timeout)"))]
CapacityReservationId = Annotated[StrictStr, matching(r"cr-[0-9a-z]+", "a capacity reservation ID such as "
                                                                       "cr-0123456789abcdef0")]
CapacityType = Literal["ON_DEMAND", "SPOT", "RESERVED"]
# Karpenter's names of the same capacity types (label karpenter.sh/capacity-type).
KARPENTER_CAPACITY_TYPES: dict[str, str] = {"ON_DEMAND": "on-demand", "SPOT": "spot", "RESERVED": "reserved"}
# The metrics KEDA scales on (read from the platform's recording rules) and the two KServe's HPA keeps.
KEDA_METRICS = ("concurrency", "requests-per-second", "queue-time-ms", "p95-latency-ms")
HPA_METRICS = ("cpu", "memory")
RUNTIME_METRICS = {"queue-time-ms": "torchserve", "p95-latency-ms": "kserve"}
# KEDA keeps a threshold in thousandths (a milli-quantity in an int64): a smaller target reads as 0, a far larger
# one overflows; a canary's share divides the per-replica target further.
MIN_TARGET, MAX_TARGET = 0.001, 1_000_000
# When a model may idle at zero and names no schedule: up on weekdays' working hours, at zero otherwise.
DEFAULT_WAKE_SCHEDULE = {"start": "0 7 * * 1-5", "end": "0 19 * * 1-5", "timezone": "UTC"}


def _cron(value: str) -> str:
    problem = cron_problem(value)
    if problem:
        raise ValueError(problem)
    return value


# Files of the zoneinfo folder that are no IANA time zone: `localtime` is the machine's own zone, which KEDA's
# image does not have.
_NOT_TIME_ZONES = frozenset({"localtime", "posixrules"})


def _timezone(value: str) -> str:
    try:
        if value in _NOT_TIME_ZONES:
            raise ValueError(value)
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError("must be an IANA time zone such as UTC or Europe/Berlin") from None
    return value


class ConsolidationConfig(FrozenModel):
    """When Karpenter replaces or removes nodes to pack GPU work onto fewer of them."""

    policy: Literal["WhenEmpty", "WhenEmptyOrUnderutilized"] = Field(
        default="WhenEmptyOrUnderutilized",
        description="`WhenEmptyOrUnderutilized` also moves pods off underused nodes (cheapest); `WhenEmpty` only "
                    "removes nodes without workload pods (fewest restarts).")
    after: Duration = Field(default="10m", description="How long a node stays empty or underused before Karpenter "
                                                       "consolidates it (`Never` turns consolidation off).")


class GpuSharingConfig(FrozenModel):
    """How the device plugin shares a pool's GPUs between pods: each shared slice counts as one nvidia.com/gpu."""

    mode: Literal["none", "time-slicing", "mig"] = Field(
        default="none", description="`none` (one pod per GPU), `time-slicing` (pods take turns on a GPU, no memory "
                                    "isolation) or `mig` (hardware partitions; A100, H100 and H200 only).")
    replicas: StrictInt | None = Field(default=None, ge=2, le=16,
                                       description="Time-slicing: slices each GPU is advertised as.")
    mig_profile: StrictStr | None = Field(default=None,
                                          description="MIG: the profile every GPU is partitioned into (e.g. 1g.10gb).")

    @model_validator(mode="after")
    def _settings_of_mode(self) -> GpuSharingConfig:
        problems = []
        if self.mode == "time-slicing" and self.replicas is None:
            problems.append(("replicas", "is required with mode time-slicing (slices per GPU, 2 to 16)"))
        if self.mode != "time-slicing" and self.replicas is not None:
            problems.append(("replicas", "is only used with mode time-slicing"))
        if self.mode == "mig" and self.mig_profile is None:
            problems.append(("migProfile", "is required with mode mig (e.g. 1g.10gb)"))
        if self.mode != "mig" and self.mig_profile is not None:
            problems.append(("migProfile", "is only used with mode mig"))
        if problems:
            raise ValueError(problems_at_subkeys(problems))
        return self


class PlatformAutoscalingConfig(FrozenModel):
    """What the platform lets its teams' autoscaling do."""

    scale_to_zero: StrictBool = Field(
        description="Models may idle at zero replicas (`autoscaling.min: 0`); defaults to true in dev, false "
                    "elsewhere; not allowed in prod, where every model keeps a floor.")


# Only dev idles at zero by default: a model at zero answers nothing until a GPU node and a replica have started.
AUTOSCALING_DEFAULTS: dict[str, dict[str, Any]] = {
    "dev": {"scaleToZero": True}, "staging": {"scaleToZero": False}, "prod": {"scaleToZero": False}}


def with_scale_to_zero_default(value: Any, environment: Any) -> Any:
    """The platform's autoscaling section with scaleToZero defaulted by environment (AUTOSCALING_DEFAULTS)."""
    if value is None:
        value = {}
    if isinstance(value, dict) and "scaleToZero" not in value and "scale_to_zero" not in value:
        value = {**value, "scaleToZero": AUTOSCALING_DEFAULTS.get(str(environment), {}).get("scaleToZero", False)}
    return value


class WakeSchedule(FrozenModel):
    """When a model that may idle at zero is kept at one replica at least (KEDA's cron scaler).

    Predictors in Standard mode have nothing in front of them that would hold a request while a replica starts, so
    a model at zero is woken by its schedule, not by a request.
    """

    start: Annotated[StrictStr, AfterValidator(_cron)] = Field(description="Cron schedule that wakes the model.")
    end: Annotated[StrictStr, AfterValidator(_cron)] = Field(description="Cron schedule after which it may idle "
                                                                         "(not the same as start).")
    timezone: Annotated[StrictStr, AfterValidator(_timezone)] = Field(default="UTC", description="IANA time zone.")

    @field_validator("end")
    @classmethod
    def _not_the_start(cls, value: str, info: ValidationInfo) -> str:
        # KEDA's cron scaler refuses a trigger whose start and end are the same (the ScaledObject never gets ready).
        start = info.data.get("start")
        if start is not None and value.split() == start.split():
            raise ValueError("must differ from start (KEDA's cron scaler refuses the same start and end)")
        return value


class ModelAutoscalingConfig(FrozenModel):
    """How many replicas a model runs, driven by its serving metrics (KEDA) or by CPU or memory (KServe's HPA)."""

    metric: Literal["concurrency", "requests-per-second", "queue-time-ms", "p95-latency-ms", "cpu", "memory"] = Field(
        description="`concurrency` (mean requests in flight per replica), `requests-per-second` (per replica), "
                    "`queue-time-ms` (TorchServe's mean queue time), `p95-latency-ms` (KServe's predict p95): KEDA "
                    "reads them from the platform's recording rules; `cpu` or `memory` (% of requests): KServe's HPA.")
    target: Annotated[FiniteNumber, Field(ge=MIN_TARGET, le=MAX_TARGET)] = Field(
        description="Value of the metric to hold each replica at (per replica for concurrency and requests; the "
                    "model's value for latencies; % for cpu and memory); 0.001 to 1000000.")
    min: StrictInt = Field(default=1, ge=0, le=100, description="Fewest replicas; 0 where the platform allows "
                                                                 "scale-to-zero (KEDA metrics only).")
    max: StrictInt = Field(default=3, ge=1, le=100, description="Most replicas.")
    wake_schedule: WakeSchedule | None = Field(
        default=None, description="With min 0: when the model is kept at one replica at least (default weekdays "
                                  "07:00 to 19:00 UTC).")

    @model_validator(mode="before")
    @classmethod
    def _default_wake_schedule(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("min") == 0 and data.get("wakeSchedule", data.get("wake_schedule")) \
                is None and data.get("metric") not in HPA_METRICS:
            data = {**data, "wakeSchedule": dict(DEFAULT_WAKE_SCHEDULE)}
        return data

    # Each check is a validator of the key it is about (every problem at its own key); the keys each one reads
    # are declared before it.

    @field_validator("target")
    @classmethod
    def _percentage_for_hpa(cls, value: float, info: ValidationInfo) -> float:
        metric = info.data.get("metric")
        if metric in HPA_METRICS and (not isinstance(value, int) or value > 100):
            raise ValueError(f"must be a whole percentage from 1 to 100 with metric {metric}")
        return value

    @field_validator("min")
    @classmethod
    def _zero_only_with_keda(cls, value: int, info: ValidationInfo) -> int:
        metric = info.data.get("metric")
        if metric in HPA_METRICS and value == 0:
            raise ValueError(f"must be at least 1 with metric {metric} (an HPA never scales to zero; scale on "
                             "concurrency or requests-per-second to idle at zero)")
        return value

    @field_validator("max")
    @classmethod
    def _max_not_below_min(cls, value: int, info: ValidationInfo) -> int:
        minimum = info.data.get("min")
        if minimum is not None and value < minimum:
            raise ValueError(f"must be at least min ({minimum})")
        return value

    @field_validator("wake_schedule")
    @classmethod
    def _schedule_only_when_idling(cls, value: WakeSchedule | None, info: ValidationInfo) -> WakeSchedule | None:
        if value is not None and info.data.get("min", 0) != 0:
            raise ValueError("is only used with min 0 (the model never idles otherwise)")
        return value

    @property
    def uses_keda(self) -> bool:
        """KEDA scales the model (on a serving metric); otherwise KServe's HPA does (on CPU or memory)."""
        return self.metric in KEDA_METRICS
