"""`aip canary analyze`: judge a team model's canary by what Prometheus recorded of its two tracks.

The stack file says which model has a canary, its stable version and the analysis thresholds (`canary.analysis`,
infra/config/canary.py). Prometheus holds the figures: the recording rules of group `aip-inference-versions`
(infra/observability/rules/inference.rules.yaml) give, per 5 minutes, each track's request rate, 5xx ratio, mean
latency and (KServe runtime) p95, labelled with the track and packaged version its pods carry.

The window: each figure is the average over the window of its 5-minute rule (`avg_over_time(rule[window])`), so
each figure has one definition, in the rules (unit-tested with promtool), not a second copy of its PromQL here; the
span of raw data behind a verdict is the window plus the rules' 5 minutes. Requests are the mean request rate times the
window's length: while a track has served for less than 5 minutes its 5-minute rates undercount, which errs
towards `hold`. Minutes without traffic have no ratio or latency sample and do not count in their averages.

The stable track is selected by its version (`canary.stableVersion`); the canary track by its track label alone,
since the canary is whatever was packaged and deployed last, and the versions it served are reported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from infra.components.inference_service import CANARY_TRACK, STABLE_TRACK
from infra.config.canary import CanaryAnalysisConfig, window_seconds
from infra.config.loader import parse_stack_config
from infra.config.models import TeamConfig
from infra.delivery.analysis import TrackFigures, Verdict, verdict
from infra.delivery.prometheus import PrometheusError, Sample
from infra.preview.project import Project, ProjectError

# The recording rules a verdict reads (group aip-inference-versions).
REQUESTS_RULE = "version:aip_inference_requests:rate5m"
ERROR_RATIO_RULE = "version:aip_inference_error_ratio:rate5m"
MEAN_LATENCY_RULE = "version:aip_inference_latency_seconds:mean5m"
P95_LATENCY_RULE = "version:aip_kserve_predict_latency_seconds:p95_5m"
FIGURE_RULES = {"requests": REQUESTS_RULE, "error_ratio": ERROR_RATIO_RULE, "mean_latency_s": MEAN_LATENCY_RULE,
                "p95_latency_s": P95_LATENCY_RULE}
VERSION_LABEL = "model_version"
# What each figure can be: a ratio lies in [0, 1]; a request rate or a latency is never negative, and beyond 1e12
# (per second, or seconds) it is no serving figure. A value outside (beyond float noise) is not evidence about the
# canary but a broken rule or a series that is not the platform's; the bounds also keep every product finite.
_MOST = 1e12
FIGURE_BOUNDS = {"requests": (0.0, _MOST), "error_ratio": (0.0, 1.0), "mean_latency_s": (0.0, _MOST),
                 "p95_latency_s": (0.0, _MOST)}
_FIGURE_NAMES = {"requests": "request rate (per second)", "error_ratio": "5xx ratio",
                 "mean_latency_s": "mean latency (seconds)", "p95_latency_s": "p95 latency (seconds)"}
_NOISE = 1e-9

Query = Callable[[str], list[Sample]]


class CanaryError(Exception):
    """The stack, the model or the options do not allow an analysis (a usage problem, exit 2)."""


@dataclass(frozen=True)
class CanaryTarget:
    """The canary to analyze, as the team stack declares it.

    Attributes:
        stack: The team stack's name (`vision-prod`).
        team: The team; also the namespace its InferenceServices run in.
        model: The model, also its InferenceService's name.
        stable_version: The version that keeps the rest of the traffic.
        traffic_percent: The canary's share of requests.
        analysis: The thresholds, with the window in effect.
    """

    stack: str
    team: str
    model: str
    stable_version: str
    traffic_percent: int
    analysis: CanaryAnalysisConfig

    @property
    def namespace(self) -> str:
        return self.team


def load_target(project: Project, stack: str, model: str, window: str | None = None) -> CanaryTarget:
    """The model's canary from the team stack's config; CanaryError saying what is wrong otherwise.

    Raises:
        CanaryError: Not a team stack, no such model, a model without canary, or a bad `window`.
        ConfigError: The stack's config does not validate (every problem, as `aip preview` reports them).
        ProjectError: No such stack file, or not YAML.
    """
    values = project.stack_config(stack)
    config = parse_stack_config(values.values, project=project.name, stack=stack, secret_keys=values.secret_keys,
                                secure_paths=values.secure_paths)
    if not isinstance(config, TeamConfig):
        raise CanaryError(f"stack {stack!r} is a platform stack; canaries are declared in team stacks "
                          f"(`ai-platform:models[].canary`), e.g. {_team_stacks(project) or '<team>-<environment>'}")
    names = [m.name for m in config.models]
    entry = next((m for m in config.models if m.name == model), None)
    if entry is None:
        raise CanaryError(f"stack {stack!r} deploys no model {model!r}; its models: {', '.join(names) or 'none'}")
    if entry.canary is None:
        raise CanaryError(f"model {model!r} of stack {stack!r} has no canary: give it `canary: {{trafficPercent, "
                          "stableVersion}` in the stack file and deploy, then analyze")
    analysis = entry.canary.analysis
    if window is not None:
        try:
            window_seconds(window)
        except ValueError as exc:
            raise CanaryError(f"--window {window[:100]!r}: {exc}") from None
        analysis = analysis.model_copy(update={"window": window})
    return CanaryTarget(stack=stack, team=config.team, model=model, stable_version=entry.canary.stable_version,
                        traffic_percent=entry.canary.traffic_percent, analysis=analysis)


def _team_stacks(project: Project) -> str:
    """The project's team stacks (those that set `team`), for the message that names a platform stack."""
    found = []
    for stack in project.stacks():
        try:
            if project.stack_config(stack).values.get(f"{project.name}:team"):
                found.append(stack)
        except ProjectError:
            continue
    return ", ".join(found)


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def selector(target: CanaryTarget, track: str) -> str:
    """The label matchers of one track's series."""
    labels = {"team": target.team, "namespace": target.namespace, "inferenceservice": target.model, "track": track}
    if track == STABLE_TRACK:
        labels[VERSION_LABEL] = target.stable_version
    return "{" + ", ".join(f"{name}={_quoted(value)}" for name, value in labels.items()) + "}"


def queries(target: CanaryTarget, track: str) -> dict[str, str]:
    """Figure name -> the PromQL that reads it for one track over the window (see the module docstring)."""
    return {figure: f"avg_over_time({rule}{selector(target, track)}[{target.analysis.window}])"
            for figure, rule in FIGURE_RULES.items()}


def track_figures(target: CanaryTarget, track: str, query: Query) -> TrackFigures:
    """One track's figures: each query's series by version, the version with the most requests reported first.

    Where the track served several versions in the window, the figures are those of the busiest one, and the
    verdict holds (infra/delivery/analysis.py).
    """
    window_s = window_seconds(target.analysis.window)
    by_version: dict[str, dict[str, float]] = {}
    for figure, expr in queries(target, track).items():
        for sample in query(expr):
            version = sample.labels.get(VERSION_LABEL, "")
            value = _within_bounds(figure, sample.value, track, expr)
            by_version.setdefault(version, {})[figure] = value * window_s if figure == "requests" else value
    if not by_version:
        return TrackFigures()
    versions = sorted(by_version, key=lambda v: (-by_version[v].get("requests", 0.0), v))
    busiest = by_version[versions[0]]
    return TrackFigures(requests=busiest.get("requests"), error_ratio=busiest.get("error_ratio"),
                        mean_latency_s=busiest.get("mean_latency_s"), p95_latency_s=busiest.get("p95_latency_s"),
                        versions=tuple(v for v in versions if v))


def _within_bounds(figure: str, value: float, track: str, expr: str) -> float:
    """The value, clamped where float noise put it just outside its figure's bounds; PrometheusError where it
    cannot be that figure at all (a negative rate, a ratio above 1)."""
    low, high = FIGURE_BOUNDS[figure]
    if low - _NOISE <= value <= high + _NOISE:
        return min(max(value, low), high)
    raise PrometheusError(f"Prometheus answered {expr!r} with {value:g} for the {track} track, which cannot be a "
                          f"{_FIGURE_NAMES[figure]} (between {low:g} and {high:g}): are the rule and its series the "
                          "platform's?")


def analyze(target: CanaryTarget, query: Query) -> Verdict:
    """Read both tracks' figures through `query` (PrometheusClient.query) and judge the canary."""
    stable = track_figures(target, STABLE_TRACK, query)
    canary = track_figures(target, CANARY_TRACK, query)
    return verdict(stable, canary, target.analysis)


__all__ = ["CanaryError", "CanaryTarget", "analyze", "load_target", "queries", "selector", "track_figures"]
