"""Canary analysis from a team stack: the canary's config, the queries on the version rules, the figures read."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from infra.config import ConfigError
from infra.config.canary import CanaryAnalysisConfig, window_seconds
from infra.delivery.canary import (
    CanaryError,
    CanaryTarget,
    analyze,
    load_target,
    queries,
    selector,
    track_figures,
)
from infra.delivery.prometheus import PrometheusError, Sample
from infra.observability.known_series import unknown_series
from infra.observability.rules import recorded_metrics
from infra.preview import Project

STABLE_VERSION = "ba9876543210"
TARGET = CanaryTarget(stack="vision-prod", team="vision", model="digits", stable_version=STABLE_VERSION,
                      traffic_percent=10, analysis=CanaryAnalysisConfig(window="5m"))


def with_canary(project_dir: Path, stack: str, canary: dict[str, object] | None) -> None:
    """Give the first model of a scratch copy's team stack a canary (or remove it)."""
    path = project_dir / "stacks" / f"Pulumi.{stack}.yaml"
    data = yaml.safe_load(path.read_text())
    model = data["config"]["ai-platform:models"][0]
    model.pop("canary", None)
    if canary is not None:
        model["canary"] = canary
    path.write_text(yaml.safe_dump(data, sort_keys=False))


# -- the config --------------------------------------------------------------------------------------------


def test_the_analysis_defaults_are_strict():
    assert CanaryAnalysisConfig().model_dump(by_alias=True) == {
        "maxErrorRatio": 0.02, "maxErrorRatioIncrease": 0.01, "maxLatencyRatio": 1.25, "minRequests": 100,
        "window": "10m"}


@pytest.mark.parametrize(("window", "seconds"), [("60s", 60), ("90s", 90), ("10m", 600), ("24h", 86_400)])
def test_windows_in_seconds(window: str, seconds: int):
    assert window_seconds(window) == seconds


@pytest.mark.parametrize(("window", "problem"), [("59s", "between 1m and 24h"), ("25h", "between 1m and 24h"),
                                                  ("1h30m", "such as 90s, 10m or 1h"), ("10", "such as"),
                                                  ("0m", "such as")])
def test_a_bad_window_says_what_is_allowed(window: str, problem: str):
    with pytest.raises(ValueError, match=problem):
        window_seconds(window)


def test_the_team_stack_accepts_an_analysis_block(scratch_project: Path):
    with_canary(scratch_project, "vision-prod", {"trafficPercent": 10, "stableVersion": STABLE_VERSION,
                                                 "analysis": {"maxLatencyRatio": 2, "minRequests": 20,
                                                              "window": "1m"}})
    target = load_target(Project.load(scratch_project), "vision-prod", "digits")
    assert target == CanaryTarget(stack="vision-prod", team="vision", model="digits", stable_version=STABLE_VERSION,
                                  traffic_percent=10, analysis=CanaryAnalysisConfig(maxLatencyRatio=2, minRequests=20,
                                                                                    window="1m"))
    assert load_target(Project.load(scratch_project), "vision-prod", "digits", "30m").analysis.window == "30m"


def test_every_bad_threshold_is_reported_with_its_key(scratch_project: Path):
    with_canary(scratch_project, "vision-prod", {"trafficPercent": 10, "stableVersion": STABLE_VERSION, "analysis": {
        "maxErrorRatio": 1.5, "maxLatencyRatio": 0.5, "minRequests": 0, "window": "2d", "typo": 1}})
    with pytest.raises(ConfigError) as raised:
        load_target(Project.load(scratch_project), "vision-prod", "digits")
    rendered = {p.key: p.message for p in raised.value.problems}
    prefix = "ai-platform:models[0].canary.analysis"
    assert rendered[f"{prefix}.maxErrorRatio"] == "must be at most 1"
    assert rendered[f"{prefix}.maxLatencyRatio"] == "must be at least 1"
    assert rendered[f"{prefix}.minRequests"] == "must be at least 1"
    assert rendered[f"{prefix}.window"] == "must be a whole number of seconds, minutes or hours, such as 90s, 10m or 1h"
    assert rendered[f"{prefix}.typo"].startswith("unknown key; allowed keys: maxErrorRatio, maxErrorRatioIncrease")


def test_a_model_without_canary_a_missing_model_and_a_platform_stack_are_refused(scratch_project: Path):
    project = Project.load(scratch_project)
    with pytest.raises(CanaryError, match=r"^model 'digits' of stack 'vision-prod' has no canary: give it `canary"):
        load_target(project, "vision-prod", "digits")
    with pytest.raises(CanaryError, match=r"^stack 'vision-prod' deploys no model 'ranker'; its models: digits$"):
        load_target(project, "vision-prod", "ranker")
    with pytest.raises(CanaryError, match=r"^stack 'prod' is a platform stack; canaries are declared in team stacks "
                                          r"\(`ai-platform:models\[\]\.canary`\), e\.g\. .*vision-prod") as raised:
        load_target(project, "prod", "digits")
    assert "staging" not in str(raised.value)


def test_a_bad_window_option_is_a_canary_error(scratch_project: Path):
    with_canary(scratch_project, "vision-prod", {"trafficPercent": 10, "stableVersion": STABLE_VERSION})
    with pytest.raises(CanaryError, match=r"^--window '30': must be a whole number"):
        load_target(Project.load(scratch_project), "vision-prod", "digits", "30")


# -- the queries -------------------------------------------------------------------------------------------


def test_the_stable_track_is_selected_by_its_version_the_canary_by_its_track():
    assert selector(TARGET, "stable") == ('{team="vision", namespace="vision", inferenceservice="digits", '
                                          f'track="stable", model_version="{STABLE_VERSION}"}}')
    assert selector(TARGET, "canary") == ('{team="vision", namespace="vision", inferenceservice="digits", '
                                          'track="canary"}')


def test_each_figure_averages_its_five_minute_rule_over_the_window():
    canary = queries(TARGET, "canary")
    sel = selector(TARGET, "canary")
    assert canary == {
        "requests": f"avg_over_time(version:aip_inference_requests:rate5m{sel}[5m])",
        "error_ratio": f"avg_over_time(version:aip_inference_error_ratio:rate5m{sel}[5m])",
        "mean_latency_s": f"avg_over_time(version:aip_inference_latency_seconds:mean5m{sel}[5m])",
        "p95_latency_s": f"avg_over_time(version:aip_kserve_predict_latency_seconds:p95_5m{sel}[5m])",
    }


def test_the_queries_read_recorded_series_with_labels_they_carry():
    """The same check every rule and dashboard passes: a renamed rule or a dropped label fails here."""
    for track in ("stable", "canary"):
        for expr in queries(TARGET, track).values():
            assert unknown_series(expr) == []
    assert {expr.split("(", 1)[1].split("{", 1)[0] for expr in queries(TARGET, "stable").values()} <= \
        recorded_metrics()


def fake_prometheus(answers: dict[str, list[Sample]]):
    asked: list[str] = []

    def query(expr: str) -> list[Sample]:
        asked.append(expr)
        rule = expr.split("(", 1)[1].split("{", 1)[0]
        track = "canary" if 'track="canary"' in expr else "stable"
        return answers.get(f"{track} {rule}", [])

    return query, asked


def test_figures_are_read_per_version_and_requests_scaled_to_the_window():
    query, asked = fake_prometheus({
        "stable version:aip_inference_requests:rate5m": [Sample({"model_version": STABLE_VERSION}, 10.0)],
        "stable version:aip_inference_error_ratio:rate5m": [Sample({"model_version": STABLE_VERSION}, 0.01)],
        "stable version:aip_inference_latency_seconds:mean5m": [Sample({"model_version": STABLE_VERSION}, 0.1)],
        "canary version:aip_inference_requests:rate5m": [Sample({"model_version": "0123456789ab"}, 1.0),
                                                         Sample({"model_version": "fedcba987654"}, 0.5)],
        "canary version:aip_inference_error_ratio:rate5m": [Sample({"model_version": "0123456789ab"}, 0.2)],
    })
    stable = track_figures(TARGET, "stable", query)
    assert (stable.requests, stable.error_ratio, stable.mean_latency_s, stable.p95_latency_s, stable.versions) == \
        (3000.0, 0.01, 0.1, None, (STABLE_VERSION,))
    canary = track_figures(TARGET, "canary", query)
    assert (canary.requests, canary.error_ratio, canary.versions) == (300.0, 0.2, ("0123456789ab", "fedcba987654"))
    assert len(asked) == 8


def test_a_track_without_series_has_no_figures():
    query, _ = fake_prometheus({})
    figures = track_figures(TARGET, "canary", query)
    assert (figures.requests, figures.error_ratio, figures.versions) == (None, None, ())


def test_analyze_rolls_back_a_failing_canary():
    version = {"model_version": "0123456789ab"}
    stable = {"model_version": STABLE_VERSION}
    query, _ = fake_prometheus({
        "stable version:aip_inference_requests:rate5m": [Sample(stable, 9.0)],
        "stable version:aip_inference_error_ratio:rate5m": [Sample(stable, 0.0)],
        "stable version:aip_inference_latency_seconds:mean5m": [Sample(stable, 0.1)],
        "canary version:aip_inference_requests:rate5m": [Sample(version, 1.0)],
        "canary version:aip_inference_error_ratio:rate5m": [Sample(version, 0.3)],
        "canary version:aip_inference_latency_seconds:mean5m": [Sample(version, 0.1)],
    })
    result = analyze(TARGET, query)
    assert result.decision == "rollback"
    assert result.reasons[0] == "the canary's 5xx ratio 30.00% is above maxErrorRatio 2.00%"


@pytest.mark.parametrize(("rule", "value"), [
    ("version:aip_inference_requests:rate5m", -1.0),
    ("version:aip_inference_requests:rate5m", 1e308),  # times the window: infinite requests
    ("version:aip_inference_error_ratio:rate5m", 1.5),
    ("version:aip_inference_error_ratio:rate5m", -0.01),
    ("version:aip_inference_latency_seconds:mean5m", -0.1),
    ("version:aip_kserve_predict_latency_seconds:p95_5m", -0.1),
])
def test_a_figure_outside_what_it_can_be_is_an_error_not_evidence(rule: str, value: float):
    query, _ = fake_prometheus({f"canary {rule}": [Sample({"model_version": "0123456789ab"}, value)]})
    with pytest.raises(PrometheusError, match=r"for the canary track, which cannot be a .* \(between 0 and "):
        track_figures(TARGET, "canary", query)


def test_float_noise_at_a_bound_is_clamped_to_it():
    version = {"model_version": "0123456789ab"}
    query, _ = fake_prometheus({"canary version:aip_inference_error_ratio:rate5m": [Sample(version, 1 + 1e-12)],
                                "canary version:aip_inference_requests:rate5m": [Sample(version, -1e-12)]})
    figures = track_figures(TARGET, "canary", query)
    assert (figures.error_ratio, figures.requests) == (1.0, 0.0)
