"""The thresholds `aip canary analyze` judges a canary by (a model's `canary.analysis`).

The defaults are deliberately strict: a canary is promoted only on evidence (enough requests on both tracks) that it
fails no more often than 2% of its answers, no more than one point above the stable version, and is at most a
quarter slower. The verdict itself is computed by infra/delivery/analysis.py; docs/delivery.md explains it.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field, StrictInt, StrictStr

from infra.config.base import FrozenModel
from infra.config.fields import FiniteNumber

# One Prometheus duration unit: the window goes into range selectors (`[10m]`) as it is written.
# https://prometheus.io/docs/prometheus/latest/querying/basics/#float-literals-and-time-durations
_WINDOW = re.compile(r"^([1-9][0-9]*)(s|m|h)$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}
# Below a minute a window holds too few rule evaluations to average; beyond a day a canary has waited too long.
MIN_WINDOW_S, MAX_WINDOW_S = 60, 86_400
DEFAULT_WINDOW = "10m"


def window_seconds(window: str) -> int:
    """Seconds of a window such as `10m`; ValueError naming the allowed form and bounds otherwise."""
    match = _WINDOW.fullmatch(window)
    if match is None:
        raise ValueError("must be a whole number of seconds, minutes or hours, such as 90s, 10m or 1h")
    seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if not MIN_WINDOW_S <= seconds <= MAX_WINDOW_S:
        raise ValueError("must be between 1m and 24h")
    return seconds


def _window(value: str) -> str:
    window_seconds(value)
    return value


Window = Annotated[StrictStr, AfterValidator(_window)]
Ratio = Annotated[FiniteNumber, Field(ge=0, le=1)]


class CanaryAnalysisConfig(FrozenModel):
    """What `aip canary analyze` requires of a canary before it recommends promoting it."""

    max_error_ratio: Ratio = Field(
        default=0.02, description="Most 5xx answers over all answers the canary may give (0.02 = 2%).")
    max_error_ratio_increase: Ratio = Field(
        default=0.01, description="Most the canary's 5xx ratio may exceed the stable version's (0.01 = one "
                                  "percentage point).")
    max_latency_ratio: Annotated[FiniteNumber, Field(ge=1, le=100)] = Field(
        default=1.25, description="Most the canary's latency may be, as a multiple of the stable version's (p95 "
                                  "where the runtime exports a histogram, else the mean).")
    min_requests: StrictInt = Field(
        default=100, ge=1, le=1_000_000_000,
        description="Fewest requests each version must have answered in the window; below, the verdict is `hold`.")
    window: Window = Field(default=DEFAULT_WINDOW,
                           description="How far back the analysis looks (`90s`, `10m`, `1h`; 1m to 24h).")
