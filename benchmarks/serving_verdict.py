"""Whether a result of benchmarks/serving.py can be trusted: medians and spreads over rounds, and the rules.

A result (model, runtime, protocol) has one set of figures per round: the raw reference's instances/s,
the served instances/s of its throughput phase, their ratio (both from the same round, so a busy spell
that slows both cancels out) and the p50 overhead of its latency phase (client p50 minus the handlers'
own p50 on the same requests). Over the rounds each figure has a median and a spread:

- for instances/s and the ratio, (max - min) / median over the rounds the median rests on: all of
  them up to 4 rounds, the middle 3 of 5 (`trimmed`): the median stands up to one wild round of five,
  and so does its spread; with 3 quick rounds every round counts;
- for the p50 overhead, max - min in milliseconds over the same rounds: a difference of a few
  milliseconds has no useful relative spread.

`judge` refuses a result when the machine or the measurement cannot be trusted (see `Bounds`). The
strict spread bound is on the ratio, the figure the rounds are paired for: on this kind of shared
machine a tiny model's in-process speed alone drifts by a third within seconds while nothing else runs
in the machine (CPU frequency, neighbours on the host), and that drift moves raw and served alike. Raw
and served alone get a looser bound (`state_spread`), which still trips when a round ran in a different
machine state altogether.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

EXIT_REFUSED = 3


def median(values: Sequence[float]) -> float:
    """The median; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def trimmed(values: Sequence[float]) -> list[float]:
    """The values without the floor((n - 1) / 4) largest and smallest: all of up to 4, the middle 3 of 5.

    The median of n rounds stands up to that many wild rounds on either side; its spread is judged on
    the rounds it rests on, so one odd round of five is outvoted rather than fatal, and two are not.
    """
    ordered = sorted(values)
    cut = (len(ordered) - 1) // 4
    return ordered[cut:len(ordered) - cut]


def spread(values: Sequence[float]) -> float:
    """(max - min) / |median| of the trimmed values: 0 for one value, NaN for none, infinite around a zero median."""
    if not values:
        return math.nan
    kept = trimmed(values)
    width = max(kept) - min(kept)
    middle = abs(median(values))
    if middle == 0:
        return 0.0 if width == 0 else math.inf
    return width / middle


def width(values: Sequence[float]) -> float:
    """max - min of the trimmed values; NaN for no values."""
    kept = trimmed(values)
    return max(kept) - min(kept) if kept else math.nan


@dataclass(frozen=True)
class Bounds:
    """When a result is refused.

    Attributes:
        spread: Largest spread of served/raw over the rounds (each round's ratio pairs figures measured
            seconds apart).
        state_spread: Largest spread of the raw or the served instances/s alone over the rounds; None
            means twice `spread`.
        ratio_tolerance: served/raw may exceed 1 by this much. The raw reference is the best of the
            batch sizes the server can form, so only measurement noise can put a served figure above it.
        overhead_tolerance_ms: The p50 overhead may be this far below zero. Every request's client
            latency contains its handler latency, so the client p50 cannot be below the handler p50 of
            the same requests; only rounding and clock granularity can.
        other_cores: Largest mean CPU (cores) of processes outside the benchmark during the result's
            raw runs and phases.
        min_rounds: Fewest rounds a median and a spread are taken over.
    """

    spread: float
    state_spread: float | None = None
    ratio_tolerance: float = 0.10
    overhead_tolerance_ms: float = 1.0
    other_cores: float = 0.30
    min_rounds: int = 3

    def describe(self) -> dict[str, Any]:
        return {"ratio_spread": self.spread, "raw_and_served_spread": self.alone,
                "spread_measure": "(max - min) / median over the rounds, without the (n - 1) // 4 highest and lowest",
                "ratio_at_most": round(1 + self.ratio_tolerance, 3),
                "p50_overhead_ms_at_least": -self.overhead_tolerance_ms,
                "other_cores_at_most": self.other_cores, "min_rounds": self.min_rounds}

    @property
    def alone(self) -> float:
        return 2 * self.spread if self.state_spread is None else self.state_spread


@dataclass(frozen=True)
class RoundFigures:
    """One round of one result.

    Attributes:
        raw_ips: The raw reference, instances/s (best over its batch sizes).
        served_ips: The throughput phase, instances/s.
        p50_overhead_ms: Client p50 minus handler p50 in the latency phase; None without handler records.
        other_cores: CPU of processes outside the benchmark during this result's raw runs and phases.
        requests: Requests sent in both phases.
        errors: Requests that failed (status other than 200, connection errors) or answers that were wrong.
    """

    raw_ips: float
    served_ips: float
    p50_overhead_ms: float | None
    other_cores: float
    requests: int = 0
    errors: int = 0


@dataclass(frozen=True)
class Verdict:
    """Medians and spreads over the rounds, and whether they may be printed as a result."""

    trusted: bool
    reasons: tuple[str, ...]
    rounds: int
    raw_rps: float
    served_rps: float
    ratio: float
    p50_overhead_ms: float
    raw_rps_spread: float
    served_rps_spread: float
    ratio_spread: float
    p50_overhead_ms_spread: float
    other_cores: float
    checked: dict[str, Any] = field(default_factory=dict)

    def figures(self) -> dict[str, float | None]:
        """The figures for output: all None when the result is refused."""
        names = ("raw_rps", "served_rps", "ratio", "p50_overhead_ms", "raw_rps_spread", "served_rps_spread",
                 "ratio_spread", "p50_overhead_ms_spread")
        if not self.trusted:
            return dict.fromkeys(names)
        return {name: _rounded(getattr(self, name)) for name in names}

    def measured(self) -> dict[str, float | None]:
        """The same figures whatever the verdict, for the results file (never printed as a result)."""
        return {name: _rounded(getattr(self, name)) for name in
                ("raw_rps", "served_rps", "ratio", "p50_overhead_ms", "raw_rps_spread", "served_rps_spread",
                 "ratio_spread", "p50_overhead_ms_spread", "other_cores")}


def _rounded(value: float) -> float | None:
    if value is None or math.isnan(value) or math.isinf(value):
        return None
    return round(value, 3)


def judge(rounds: Sequence[RoundFigures], bounds: Bounds) -> Verdict:
    """Medians and spreads of `rounds`, refused with every reason that applies."""
    raw = [r.raw_ips for r in rounds]
    served = [r.served_ips for r in rounds]
    ratios = [r.served_ips / r.raw_ips if r.raw_ips > 0 else math.inf for r in rounds]
    overheads = [r.p50_overhead_ms for r in rounds if r.p50_overhead_ms is not None]
    other = sum(r.other_cores for r in rounds) / len(rounds) if rounds else math.nan
    verdict = Verdict(
        trusted=True, reasons=(), rounds=len(rounds),
        raw_rps=median(raw), served_rps=median(served), ratio=median(ratios),
        p50_overhead_ms=median(overheads),
        raw_rps_spread=spread(raw), served_rps_spread=spread(served), ratio_spread=spread(ratios),
        p50_overhead_ms_spread=width(overheads), other_cores=other,
    )
    reasons = _reasons(verdict, rounds, len(overheads), bounds)
    return Verdict(**{**verdict.__dict__, "trusted": not reasons, "reasons": tuple(reasons),
                      "checked": bounds.describe()})


def _reasons(v: Verdict, rounds: Sequence[RoundFigures], overhead_rounds: int, bounds: Bounds) -> list[str]:
    reasons = []
    if len(rounds) < bounds.min_rounds:
        reasons.append(f"only {len(rounds)} round(s), {bounds.min_rounds} needed")
        if not rounds:
            return reasons
    errors, requests = sum(r.errors for r in rounds), sum(r.requests for r in rounds)
    if errors:
        reasons.append(f"{errors} of {requests} requests failed or were answered wrongly")
    if not v.ratio_spread <= bounds.spread:
        reasons.append(f"served/raw spread {v.ratio_spread:.2f} over {len(rounds)} rounds > {bounds.spread:.2f}")
    if not v.raw_rps_spread <= bounds.alone:
        reasons.append(f"raw inst/s spread {v.raw_rps_spread:.2f} over {len(rounds)} rounds > {bounds.alone:.2f}")
    if not v.served_rps_spread <= bounds.alone:
        reasons.append(f"served inst/s spread {v.served_rps_spread:.2f} over {len(rounds)} rounds "
                       f"> {bounds.alone:.2f}")
    if not v.ratio <= 1 + bounds.ratio_tolerance:
        reasons.append(f"served/raw {v.ratio:.2f} > {1 + bounds.ratio_tolerance:.2f}: the raw reference already "
                       "runs the batch sizes the server can form, so batching does not explain it")
    if overhead_rounds < len(rounds):
        reasons.append(f"handler p50 missing in {len(rounds) - overhead_rounds} round(s): no request log records")
    elif not v.p50_overhead_ms >= -bounds.overhead_tolerance_ms:
        reasons.append(f"p50 overhead {v.p50_overhead_ms:.1f} ms < {-bounds.overhead_tolerance_ms:.1f} ms: the "
                       "handler cannot take longer than the request it is part of")
    if not v.other_cores <= bounds.other_cores:
        reasons.append(f"other processes used {v.other_cores:.2f} cores on average > {bounds.other_cores:.2f}")
    return reasons


def quietest_rounds(other_cores: Sequence[float], count: int) -> list[int]:
    """Indices of the `count` rounds with the least CPU used by other processes, in the order they ran.

    Rounds are chosen by what the rest of the machine did, never by the figures they measured.
    """
    ranked = sorted(range(len(other_cores)), key=lambda i: (other_cores[i], -i))
    return sorted(ranked[:count])


def exit_code(statuses: Sequence[str]) -> int:
    """EXIT_REFUSED when any result was refused, else 0 (a protocol a server does not offer is no failure)."""
    return EXIT_REFUSED if any(status == "refused" for status in statuses) else 0
