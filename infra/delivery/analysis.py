"""The canary verdict: promote, hold or roll back, from what each track served over the window.

Pure: figures and thresholds in, a verdict out; no Prometheus, no config files (infra/delivery/canary.py reads
those). The rules, in the order they are applied (docs/delivery.md, "Canary analysis"):

1. The canary track served more than one version in the window (a rollout replaced it meanwhile): hold, since the
   figures mix versions.
2. Roll back when the evidence is enough to judge a check and the check fails: the canary's 5xx ratio above
   `maxErrorRatio` (needs `minRequests` on the canary), its 5xx ratio more than `maxErrorRatioIncrease` above the
   stable version's, or its latency more than `maxLatencyRatio` times the stable version's (both need
   `minRequests` on both tracks). Latency is the p95 where both tracks have one (the KServe runtime's histogram),
   else the mean (TorchServe exports counters only).
3. Hold while either track has fewer than `minRequests` requests, or a figure a check needs is missing.
4. Otherwise promote.

A value exactly at its threshold passes: the thresholds say what is still acceptable. Like Flagger's metric
checks (5xx ratio and latency of the canary against accepted ranges), but run once, on demand, by whoever deploys,
and comparing the canary with the stable version it would replace:
https://docs.flagger.app/usage/metrics
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from infra.config.canary import CanaryAnalysisConfig
from infra.delivery.text import quoted

Decision = Literal["promote", "hold", "rollback"]
LatencyMeasure = Literal["p95", "mean"]
# Float noise (0.03 - 0.01 = 0.019999999999999997) must not turn a value at its threshold into a failure.
_TOLERANCE = 1e-9
# Versions are label values from Prometheus: a message names a few, each cut to the longest a version can be.
_SHOWN_VERSIONS, _VERSION_CHARS = 3, 64


@dataclass(frozen=True)
class TrackFigures:
    """What one track (stable or canary) served over the window; None where Prometheus had no sample.

    Attributes:
        requests: Requests answered in the window (the mean request rate times the window's length).
        error_ratio: 5xx answers over all answers.
        mean_latency_s: Mean seconds per request.
        p95_latency_s: 95th percentile of seconds per prediction (only runtimes with a histogram).
        versions: The packaged versions the track's series carry, most requests first.
    """

    requests: float | None = None
    error_ratio: float | None = None
    mean_latency_s: float | None = None
    p95_latency_s: float | None = None
    versions: tuple[str, ...] = ()

    def latency(self, measure: LatencyMeasure | None) -> float | None:
        if measure is None:
            return None
        return self.p95_latency_s if measure == "p95" else self.mean_latency_s

    def to_json(self) -> dict[str, Any]:
        return {"requests": self.requests, "errorRatio": self.error_ratio, "meanLatencySeconds": self.mean_latency_s,
                "p95LatencySeconds": self.p95_latency_s, "versions": list(self.versions)}


@dataclass(frozen=True)
class Check:
    """One comparison of the verdict, for the report.

    Attributes:
        name: What is compared (`requests`, `error ratio`, `error ratio increase`, `latency ratio`).
        value: The canary's value (for `requests`, the smaller of the two tracks'); None when not computable.
        limit: The threshold.
        passed: Whether the value is within the threshold; None when the check could not be judged.
    """

    name: str
    value: float | None
    limit: float
    passed: bool | None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "limit": self.limit, "passed": self.passed}


@dataclass(frozen=True)
class Verdict:
    """The decision and why.

    Attributes:
        decision: `promote`, `hold` (not enough evidence yet) or `rollback`.
        reasons: One sentence per reason for the decision.
        stable: The stable track's figures.
        canary: The canary track's figures.
        checks: Every comparison, passed or not.
        latency_measure: Which latency the latency check compared (None when neither track has one).
        thresholds: The thresholds applied.
    """

    decision: Decision
    reasons: tuple[str, ...]
    stable: TrackFigures
    canary: TrackFigures
    checks: tuple[Check, ...]
    latency_measure: LatencyMeasure | None
    thresholds: CanaryAnalysisConfig

    def to_json(self) -> dict[str, Any]:
        return {"decision": self.decision, "reasons": list(self.reasons), "stable": self.stable.to_json(),
                "canary": self.canary.to_json(), "checks": [c.to_json() for c in self.checks],
                "latencyMeasure": self.latency_measure, "thresholds": self.thresholds.model_dump(by_alias=True)}


def versions_text(versions: tuple[str, ...]) -> str:
    """The versions for a message: the first few, printable and cut to length, and how many more there are."""
    shown = ", ".join(quoted(v, _VERSION_CHARS) for v in versions[:_SHOWN_VERSIONS])
    more = len(versions) - _SHOWN_VERSIONS
    return shown + (f" and {more} more" if more > 0 else "")


def exceeds(value: float, limit: float) -> bool:
    """Strictly above the limit, beyond float noise."""
    return value > limit and not math.isclose(value, limit, rel_tol=_TOLERANCE, abs_tol=_TOLERANCE)


def latency_measure(stable: TrackFigures, canary: TrackFigures) -> LatencyMeasure | None:
    """p95 where both tracks have one, else the mean where both have one, else None."""
    if stable.p95_latency_s is not None and canary.p95_latency_s is not None:
        return "p95"
    if stable.mean_latency_s is not None and canary.mean_latency_s is not None:
        return "mean"
    return None


def _enough(figures: TrackFigures, minimum: int) -> bool:
    return figures.requests is not None and figures.requests >= minimum


def _requests_text(track: str, figures: TrackFigures, thresholds: CanaryAnalysisConfig) -> str:
    if figures.requests is None:
        return f"the {track} track has no request series in the last {thresholds.window}"
    return (f"the {track} track answered about {figures.requests:.0f} requests in the last {thresholds.window}, "
            f"fewer than minRequests ({thresholds.min_requests})")


def verdict(stable: TrackFigures, canary: TrackFigures, thresholds: CanaryAnalysisConfig) -> Verdict:
    """Promote, hold or roll back (see the module docstring for the rules)."""
    measure = latency_measure(stable, canary)
    canary_enough = _enough(canary, thresholds.min_requests)
    both_enough = canary_enough and _enough(stable, thresholds.min_requests)
    failures: list[str] = []
    missing: list[str] = []

    known = [r for r in (stable.requests, canary.requests) if r is not None]
    checks = [Check("requests", min(known) if len(known) == 2 else None, thresholds.min_requests, both_enough)]

    def judge(name: str, value: float | None, limit: float, enough: bool, lacking: str,
              failure: Callable[[], str]) -> None:
        """One check: not judged without enough requests, missing without a value, failed above its limit."""
        passed = None
        if enough and value is None:
            missing.append(lacking)
        elif enough and value is not None:
            passed = not exceeds(value, limit)
            if not passed:
                failures.append(failure())
        checks.append(Check(name, value, limit, passed))

    ratio = canary.error_ratio
    judge("error ratio", ratio, thresholds.max_error_ratio, canary_enough,
          "the canary track has requests but no error ratio",
          lambda: f"the canary's 5xx ratio {ratio:.2%} is above maxErrorRatio {thresholds.max_error_ratio:.2%}")

    increase = None if ratio is None or stable.error_ratio is None else ratio - stable.error_ratio
    judge("error ratio increase", increase, thresholds.max_error_ratio_increase, both_enough,
          "a track has requests but no error ratio",
          lambda: f"the canary's 5xx ratio {ratio:.2%} is {increase:.2%} above the stable version's "
                  f"{stable.error_ratio:.2%}, more than maxErrorRatioIncrease "
                  f"{thresholds.max_error_ratio_increase:.2%}")

    stable_latency, canary_latency = stable.latency(measure), canary.latency(measure)
    latency_ratio = None
    if stable_latency is not None and canary_latency is not None and stable_latency > 0:
        latency_ratio = canary_latency / stable_latency
    judge("latency ratio", latency_ratio, thresholds.max_latency_ratio, both_enough,
          "no latency figure to compare (a track has no latency series, or the stable one is 0)",
          lambda: f"the canary's {measure} latency {canary_latency * 1000:.1f} ms is {latency_ratio:.2f} times the "
                  f"stable version's {stable_latency * 1000:.1f} ms, more than maxLatencyRatio "
                  f"{thresholds.max_latency_ratio:g}")

    def decided(decision: Decision, reasons: list[str]) -> Verdict:
        return Verdict(decision, tuple(reasons), stable, canary, tuple(checks), measure, thresholds)

    if len(canary.versions) > 1:
        return decided("hold", [f"the canary track served {len(canary.versions)} versions in the last "
                                f"{thresholds.window} ({versions_text(canary.versions)}): wait until the window holds "
                                "only the new one"])
    if failures:
        return decided("rollback", failures)
    short = [_requests_text(track, figures, thresholds) for track, figures in (("stable", stable), ("canary", canary))
             if not _enough(figures, thresholds.min_requests)]
    if short or missing:
        return decided("hold", short + missing)
    return decided("promote", [f"every check passed over the last {thresholds.window}: 5xx ratio {ratio:.2%}, "
                               f"{increase:+.2%} against stable, {measure} latency {latency_ratio:.2f} times "
                               "stable's"])
