"""The canary verdict (infra/delivery/analysis.py): every branch, and values exactly at their thresholds."""

from __future__ import annotations

import dataclasses
import io
import json

import pytest
from rich.console import Console

from infra.config.canary import CanaryAnalysisConfig
from infra.delivery.analysis import TrackFigures, exceeds, latency_measure, verdict
from infra.delivery.canary import CanaryTarget
from infra.delivery.report import print_verdict, verdict_document

# Defaults: maxErrorRatio 0.02, maxErrorRatioIncrease 0.01, maxLatencyRatio 1.25, minRequests 100, window 10m.
THRESHOLDS = CanaryAnalysisConfig()
STABLE = TrackFigures(requests=5000, error_ratio=0.01, mean_latency_s=0.100, versions=("ba9876543210",))
CANARY = TrackFigures(requests=500, error_ratio=0.012, mean_latency_s=0.110, versions=("0123456789ab",))
TARGET = CanaryTarget(stack="vision-prod", team="vision", model="digits", stable_version="ba9876543210",
                      traffic_percent=10, analysis=THRESHOLDS)


def canary(**changes: object) -> TrackFigures:
    return dataclasses.replace(CANARY, **changes)


def stable(**changes: object) -> TrackFigures:
    return dataclasses.replace(STABLE, **changes)


def checks_of(result) -> dict[str, bool | None]:
    return {c.name: c.passed for c in result.checks}


def test_a_healthy_canary_is_promoted_with_every_check_passed():
    result = verdict(STABLE, CANARY, THRESHOLDS)
    assert result.decision == "promote"
    assert checks_of(result) == {"requests": True, "error ratio": True, "error ratio increase": True,
                                 "latency ratio": True}
    assert result.latency_measure == "mean"
    assert [c.value for c in result.checks] == pytest.approx([500, 0.012, 0.002, 1.1])
    assert result.reasons == ("every check passed over the last 10m: 5xx ratio 1.20%, +0.20% against stable, "
                              "mean latency 1.10 times stable's",)


def test_an_error_ratio_above_the_maximum_rolls_back():
    result = verdict(stable(error_ratio=0.02), canary(error_ratio=0.025), THRESHOLDS)
    assert result.decision == "rollback"
    assert result.reasons == ("the canary's 5xx ratio 2.50% is above maxErrorRatio 2.00%",)
    assert checks_of(result)["error ratio"] is False and checks_of(result)["error ratio increase"] is True


def test_an_error_ratio_increase_above_the_maximum_rolls_back_below_the_absolute_limit():
    result = verdict(stable(error_ratio=0.0), canary(error_ratio=0.015), THRESHOLDS)
    assert result.decision == "rollback"
    assert result.reasons == ("the canary's 5xx ratio 1.50% is 1.50% above the stable version's 0.00%, more than "
                              "maxErrorRatioIncrease 1.00%",)
    assert checks_of(result)["error ratio"] is True


def test_a_slower_canary_rolls_back():
    result = verdict(STABLE, canary(mean_latency_s=0.130), THRESHOLDS)
    assert result.decision == "rollback"
    assert result.reasons == ("the canary's mean latency 130.0 ms is 1.30 times the stable version's 100.0 ms, "
                              "more than maxLatencyRatio 1.25",)


def test_every_failed_check_is_a_reason():
    result = verdict(stable(error_ratio=0.0), canary(error_ratio=0.5, mean_latency_s=1.0), THRESHOLDS)
    assert result.decision == "rollback"
    assert len(result.reasons) == 3
    assert checks_of(result) == {"requests": True, "error ratio": False, "error ratio increase": False,
                                 "latency ratio": False}


@pytest.mark.parametrize(("stable_figures", "canary_figures"), [
    # Exactly at maxErrorRatio, with the increase exactly at maxErrorRatioIncrease (0.02 - 0.01 is not 0.01 in floats).
    (stable(error_ratio=0.01), canary(error_ratio=0.02)),
    # Exactly maxLatencyRatio times stable's latency.
    (STABLE, canary(mean_latency_s=0.125)),
    # Exactly minRequests on each track.
    (stable(requests=100), canary(requests=100)),
], ids=["error-ratio-and-increase", "latency-ratio", "min-requests"])
def test_a_value_at_its_threshold_passes(stable_figures: TrackFigures, canary_figures: TrackFigures):
    assert verdict(stable_figures, canary_figures, THRESHOLDS).decision == "promote"


@pytest.mark.parametrize(("stable_figures", "canary_figures", "failed"), [
    (stable(error_ratio=0.015), canary(error_ratio=0.0201), "error ratio"),
    (stable(error_ratio=0.0), canary(error_ratio=0.0101), "error ratio increase"),
    (STABLE, canary(mean_latency_s=0.1251), "latency ratio"),
], ids=["error-ratio", "increase", "latency"])
def test_just_above_a_threshold_rolls_back(stable_figures: TrackFigures, canary_figures: TrackFigures, failed: str):
    result = verdict(stable_figures, canary_figures, THRESHOLDS)
    assert result.decision == "rollback"
    assert [name for name, passed in checks_of(result).items() if passed is False] == [failed]


def test_too_few_canary_requests_hold_even_with_errors():
    result = verdict(STABLE, canary(requests=99, error_ratio=0.5), THRESHOLDS)
    assert result.decision == "hold"
    assert result.reasons == ("the canary track answered about 99 requests in the last 10m, fewer than minRequests "
                              "(100)",)
    assert checks_of(result) == {"requests": False, "error ratio": None, "error ratio increase": None,
                                 "latency ratio": None}


def test_a_failing_canary_rolls_back_even_when_the_stable_track_is_short_of_requests():
    """The canary's own 5xx ratio needs only the canary's evidence; the comparisons need both tracks'."""
    result = verdict(stable(requests=10), canary(error_ratio=0.5), THRESHOLDS)
    assert result.decision == "rollback"
    assert checks_of(result) == {"requests": False, "error ratio": False, "error ratio increase": None,
                                 "latency ratio": None}


def test_too_few_stable_requests_hold_a_healthy_canary():
    result = verdict(stable(requests=40), CANARY, THRESHOLDS)
    assert result.decision == "hold"
    assert result.reasons == ("the stable track answered about 40 requests in the last 10m, fewer than minRequests "
                              "(100)",)


def test_no_series_at_all_holds_naming_both_tracks():
    result = verdict(TrackFigures(), TrackFigures(), THRESHOLDS)
    assert result.decision == "hold"
    assert result.reasons == ("the stable track has no request series in the last 10m",
                              "the canary track has no request series in the last 10m")
    assert checks_of(result) == {"requests": False, "error ratio": None, "error ratio increase": None,
                                 "latency ratio": None}


def test_no_latency_to_compare_holds():
    result = verdict(STABLE, canary(mean_latency_s=None), THRESHOLDS)
    assert result.decision == "hold"
    assert result.reasons == ("no latency figure to compare (a track has no latency series, or the stable one is 0)",)


def test_a_track_without_error_ratio_holds():
    result = verdict(stable(error_ratio=None), CANARY, THRESHOLDS)
    assert result.decision == "hold"
    assert result.reasons == ("a track has requests but no error ratio",)


def test_several_canary_versions_in_the_window_hold_whatever_the_figures():
    result = verdict(STABLE, canary(error_ratio=0.9, versions=("0123456789ab", "fedcba987654")), THRESHOLDS)
    assert result.decision == "hold"
    assert result.reasons == ("the canary track served 2 versions in the last 10m (0123456789ab, fedcba987654): "
                              "wait until the window holds only the new one",)


def test_p95_is_compared_where_both_tracks_have_one():
    faster_p95 = verdict(stable(p95_latency_s=0.4), canary(p95_latency_s=0.45, mean_latency_s=0.5), THRESHOLDS)
    assert faster_p95.latency_measure == "p95" and faster_p95.decision == "promote"
    slower_p95 = verdict(stable(p95_latency_s=0.4), canary(p95_latency_s=0.6), THRESHOLDS)
    assert slower_p95.decision == "rollback" and "p95 latency 600.0 ms is 1.50 times" in slower_p95.reasons[0]
    # Only one track has a p95: the mean of both is compared instead.
    assert latency_measure(stable(p95_latency_s=0.4), CANARY) == "mean"
    assert latency_measure(stable(mean_latency_s=None), canary(mean_latency_s=None)) is None


def test_thresholds_come_from_the_config():
    strict = CanaryAnalysisConfig(maxErrorRatio=0.001, minRequests=1000, window="1h")
    result = verdict(STABLE, canary(requests=1000, error_ratio=0.002), strict)
    assert result.decision == "rollback"
    assert result.reasons[0] == "the canary's 5xx ratio 0.20% is above maxErrorRatio 0.10%"
    assert verdict(STABLE, CANARY, strict).reasons[0].endswith("fewer than minRequests (1000)")
    assert "in the last 1h" in verdict(STABLE, CANARY, strict).reasons[0]


def test_exceeds_ignores_float_noise_only():
    assert not exceeds(0.03 - 0.01, 0.02)
    assert exceeds(0.0200001, 0.02)
    assert not exceeds(0.0199, 0.02)


def test_the_json_form_names_everything_the_verdict_rests_on():
    document = verdict(STABLE, CANARY, THRESHOLDS).to_json()
    assert document["decision"] == "promote"
    assert document["stable"] == {"requests": 5000, "errorRatio": 0.01, "meanLatencySeconds": 0.1,
                                  "p95LatencySeconds": None, "versions": ["ba9876543210"]}
    assert document["thresholds"] == {"maxErrorRatio": 0.02, "maxErrorRatioIncrease": 0.01, "maxLatencyRatio": 1.25,
                                      "minRequests": 100, "window": "10m"}
    assert [c["name"] for c in document["checks"]] == ["requests", "error ratio", "error ratio increase",
                                                       "latency ratio"]


def test_versions_from_prometheus_are_named_printable_short_and_few():
    many = tuple(f"{i:012x}" for i in range(50))
    result = verdict(STABLE, canary(versions=many), THRESHOLDS)
    assert result.reasons[0].startswith("the canary track served 50 versions in the last 10m (000000000000, "
                                        "000000000001, 000000000002 and 47 more): ")
    hostile = ("\x1b[2J" + "f" * 500, "[/bold]0123456789ab")
    result = verdict(STABLE, canary(versions=hostile), THRESHOLDS)
    assert "\x1b" not in result.reasons[0] and "f" * 64 not in result.reasons[0]
    # Shown as written, never read as rich markup (a stray closing tag would stop the report).
    console = Console(file=io.StringIO(), width=300)
    print_verdict(TARGET, result, console)
    shown = console.file.getvalue()
    assert "\x1b[2J" not in shown and shown.count("[/bold]0123456789ab") == 2


def test_the_json_document_is_strict_json_whatever_the_figures():
    # A stable latency near zero makes the latency ratio infinite: JSON has no Infinity, so it is null.
    result = verdict(stable(mean_latency_s=5e-324), canary(mean_latency_s=1.0), THRESHOLDS)
    assert result.decision == "rollback"
    document = verdict_document(TARGET, result, prometheus="http://127.0.0.1:9090", exit_code=1)
    text = json.dumps(document, allow_nan=False)
    latency = next(c for c in json.loads(text)["checks"] if c["name"] == "latency ratio")
    assert (latency["value"], latency["passed"]) == (None, False)
    console = Console(file=io.StringIO(), width=100)
    print_verdict(TARGET, result, console)
    assert "ROLL BACK" in console.file.getvalue()
