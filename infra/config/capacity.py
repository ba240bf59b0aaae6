"""How GPU capacity is provisioned, shared and scaled: the pool settings Karpenter and the device plugin read, the
platform's scale-to-zero switch, and a model's autoscaling.

Durations use Karpenter's format (`30s`, `10m`, `720h`, `1h30m`); cron strings KEDA's cron scaler's five fields.
"""

from __future__ import annotations

import math
import zoneinfo
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from infra.config.base import FrozenModel
from infra.config.cron import cron_problem
from infra.config.errors import SUBKEY_MARK

# https://github.com/kubernetes-sigs/karpenter/blob/v1.14.1/pkg/apis/v1/nodepool.go (consolidateAfter, expireAfter)
_DURATION = r"^(([0-9]+(s|m|h))+|Never)$"

Duration = Annotated[StrictStr, Field(pattern=_DURATION)]
CapacityReservationId = Annotated[StrictStr, Field(pattern=r"^cr-[0-9a-z]+$")]
CapacityType = Literal["ON_DEMAND", "SPOT", "RESERVED"]
# Karpenter's names of the same capacity types (label karpenter.sh/capacity-type).
KARPENTER_CAPACITY_TYPES: dict[str, str] = {"ON_DEMAND": "on-demand", "SPOT": "spot", "RESERVED": "reserved"}
# The metrics KEDA scales on (read from the platform's recording rules) and the two KServe's HPA keeps.
KEDA_METRICS = ("concurrency", "requests-per-second", "queue-time-ms", "p95-latency-ms")
HPA_METRICS = ("cpu", "memory")
RUNTIME_METRICS = {"queue-time-ms": "torchserve", "p95-latency-ms": "kserve"}
# When a model may idle at zero and names no schedule: up on weekdays' working hours, at zero otherwise.
DEFAULT_WAKE_SCHEDULE = {"start": "0 7 * * 1-5", "end": "0 19 * * 1-5", "timezone": "UTC"}


def _cron(value: str) -> str:
    problem = cron_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _timezone(value: str) -> str:
    try:
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
            problems.append(f"{SUBKEY_MARK}replicas: is required with mode time-slicing (slices per GPU, 2 to 16)")
        if self.mode != "time-slicing" and self.replicas is not None:
            problems.append(f"{SUBKEY_MARK}replicas: is only used with mode time-slicing")
        if self.mode == "mig" and self.mig_profile is None:
            problems.append(f"{SUBKEY_MARK}migProfile: is required with mode mig (e.g. 1g.10gb)")
        if self.mode != "mig" and self.mig_profile is not None:
            problems.append(f"{SUBKEY_MARK}migProfile: is only used with mode mig")
        if problems:
            raise ValueError(problems[0] if len(problems) == 1 else "; ".join(p.lstrip(SUBKEY_MARK) for p in problems))
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
    end: Annotated[StrictStr, AfterValidator(_cron)] = Field(description="Cron schedule after which it may idle.")
    timezone: Annotated[StrictStr, AfterValidator(_timezone)] = Field(default="UTC", description="IANA time zone.")


class ModelAutoscalingConfig(FrozenModel):
    """How many replicas a model runs, driven by its serving metrics (KEDA) or by CPU or memory (KServe's HPA)."""

    metric: Literal["concurrency", "requests-per-second", "queue-time-ms", "p95-latency-ms", "cpu", "memory"] = Field(
        description="`concurrency` (mean requests in flight per replica), `requests-per-second` (per replica), "
                    "`queue-time-ms` (TorchServe's mean queue time), `p95-latency-ms` (KServe's predict p95): KEDA "
                    "reads them from the platform's recording rules; `cpu` or `memory` (% of requests): KServe's HPA.")
    target: Annotated[StrictInt | StrictFloat, Field(gt=0, allow_inf_nan=False)] = Field(
        description="Value of the metric to hold each replica at (per replica for concurrency and requests; the "
                    "model's value for latencies; % for cpu and memory).")
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

    @field_validator("target", mode="before")
    @classmethod
    def _a_finite_number(cls, value: Any) -> Any:
        # One message, at `target`, instead of one per member of the int | float union.
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueError("must be a finite number greater than 0")
        return value

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
