"""Statistics and verdicts of benchmarks/serving.py: a trusted baseline, then one mutation per refusal rule."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from serving_plan import KSERVE_V1, KSERVE_V2_GRPC, TORCHSERVE_V1
from serving_report import markdown_table, result_line
from serving_verdict import (
    EXIT_REFUSED,
    Bounds,
    RoundFigures,
    exit_code,
    judge,
    median,
    quietest_rounds,
    spread,
    width,
)

BOUNDS = Bounds(spread=0.20)
QUIET = RoundFigures(raw_ips=100.0, served_ips=80.0, p50_overhead_ms=2.0, other_cores=0.05, requests=200)


def rounds(*changes: dict[str, float]) -> list[RoundFigures]:
    return [replace(QUIET, **change) for change in changes]


@pytest.mark.parametrize(("values", "expected"), [([], math.nan), ([3.0], 3.0), ([3.0, 1.0, 2.0], 2.0),
                                                  ([4.0, 1.0, 2.0, 3.0], 2.5)])
def test_median(values, expected):
    assert median(values) == expected or (math.isnan(expected) and math.isnan(median(values)))


def test_spread_is_the_range_over_the_median():
    assert spread([90.0, 100.0, 110.0]) == pytest.approx(0.2)
    assert spread([5.0]) == 0.0
    assert math.isnan(spread([]))
    assert spread([-1.0, 0.0, 1.0]) == math.inf


def test_from_five_rounds_the_spread_is_that_of_the_rounds_the_median_rests_on():
    from serving_verdict import trimmed

    assert trimmed([5.0, 1.0, 3.0, 4.0, 2.0]) == [2.0, 3.0, 4.0]
    assert trimmed([1.0, 2.0, 3.0, 4.0]) == [1.0, 2.0, 3.0, 4.0]
    assert len(trimmed([float(v) for v in range(9)])) == 5
    # One wild round of five is outvoted, as it is by the median; two are not.
    assert spread([100.0, 101.0, 99.0, 100.0, 160.0]) == pytest.approx(0.01)
    assert spread([100.0, 101.0, 99.0, 150.0, 160.0]) == pytest.approx(50 / 101)
    assert width([1.0, 2.0, 2.5, 3.0, -9.0]) == pytest.approx(1.5)
    assert width([1.5, -0.5, 0.5]) == 2.0


def test_steady_rounds_are_trusted_with_medians_and_spreads():
    verdict = judge(rounds({"served_ips": 78.0}, {}, {"served_ips": 82.0, "p50_overhead_ms": 3.0}), BOUNDS)
    assert verdict.trusted and verdict.reasons == ()
    assert verdict.served_rps == 80.0 and verdict.raw_rps == 100.0
    assert verdict.ratio == pytest.approx(0.8)
    assert verdict.served_rps_spread == pytest.approx(0.05)
    assert verdict.p50_overhead_ms == 2.0 and verdict.p50_overhead_ms_spread == 1.0
    assert verdict.figures()["ratio"] == 0.8


def test_the_ratio_pairs_raw_and_served_of_the_same_round():
    # A busy spell slowed raw and served alike in round 2: the paired ratios agree.
    verdict = judge(rounds({}, {"raw_ips": 90.0, "served_ips": 72.0}, {}), BOUNDS)
    assert verdict.ratio == pytest.approx(0.8) and verdict.ratio_spread == pytest.approx(0.0)


def test_the_busy_machine_of_the_issue_is_refused_and_exits_non_zero():
    # The filed issue: ResNet-18 KServe served/raw 2.18 and a p50 overhead of -716 ms, printed with exit 0.
    issue = rounds(*[{"raw_ips": 1.0, "served_ips": 2.18, "p50_overhead_ms": -716.0}] * 3)
    verdict = judge(issue, BOUNDS)
    assert not verdict.trusted
    assert any(reason.startswith("served/raw 2.18 > 1.10") for reason in verdict.reasons)
    assert any(reason.startswith("p50 overhead -716.0 ms < -1.0 ms") for reason in verdict.reasons)
    assert set(verdict.figures().values()) == {None}
    line = result_line("resnet18", KSERVE_V1, verdict)
    assert line["trusted"] is False and line["status"] == "refused"
    assert line["ratio"] is None and line["p50_overhead_ms"] is None and line["served_rps"] is None
    assert exit_code([line["status"]]) == EXIT_REFUSED != 0


@pytest.mark.parametrize(("changes", "reason"), [
    ([{"raw_ips": 70.0}, {}, {}], "served/raw spread 0.43 over 3 rounds > 0.20"),
    ([{"served_ips": 60.0}, {}, {}], "served/raw spread 0.25 over 3 rounds > 0.20"),
    ([{"served_ips": 111.0}, {"served_ips": 112.0}, {"served_ips": 113.0}], "served/raw 1.12 > 1.10"),
    ([{"p50_overhead_ms": -1.5}] * 3, "p50 overhead -1.5 ms < -1.0 ms"),
    ([{"p50_overhead_ms": None}, {}, {}], "handler p50 missing in 1 round(s)"),
    ([{"other_cores": 0.5}, {"other_cores": 0.4}, {"other_cores": 0.3}], "other processes used 0.40 cores"),
    ([{"errors": 2}, {}, {}], "2 of 600 requests failed or were answered wrongly"),
    ([{}, {}], "only 2 round(s), 3 needed"),
])
def test_each_rule_refuses_on_its_own(changes, reason):
    verdict = judge(rounds(*changes), BOUNDS)
    assert not verdict.trusted
    assert len(verdict.reasons) == 1 and verdict.reasons[0].startswith(reason), verdict.reasons


def test_a_drift_that_moves_raw_and_served_alike_is_not_refused():
    # A tiny model's in-process speed drifts by a third on a quiet shared machine; the paired ratio holds.
    verdict = judge(rounds({"raw_ips": 70.0, "served_ips": 56.0}, {}, {}), BOUNDS)
    assert verdict.trusted, verdict.reasons
    assert verdict.raw_rps_spread == pytest.approx(0.3) and verdict.ratio_spread == pytest.approx(0.0)


def test_a_round_in_another_machine_state_altogether_is_refused():
    verdict = judge(rounds({"raw_ips": 50.0, "served_ips": 40.0}, {}, {}), BOUNDS)
    assert verdict.ratio_spread == pytest.approx(0.0)
    assert verdict.reasons == ("raw inst/s spread 0.50 over 3 rounds > 0.40",
                               "served inst/s spread 0.50 over 3 rounds > 0.40")


def test_tolerances_leave_noise_alone():
    verdict = judge(rounds(*[{"served_ips": 108.0, "p50_overhead_ms": -0.4}] * 3), BOUNDS)
    assert verdict.trusted, verdict.reasons


def test_no_rounds_is_refused_without_figures():
    verdict = judge([], BOUNDS)
    assert not verdict.trusted and verdict.reasons == ("only 0 round(s), 3 needed",)


def test_quietest_rounds_are_chosen_by_the_rest_of_the_machine_in_time_order():
    assert quietest_rounds([0.9, 0.1, 0.2, 0.05, 0.6], 3) == [1, 2, 3]
    assert quietest_rounds([0.1, 0.1, 0.1, 0.1], 3) == [1, 2, 3]  # ties: the latest
    assert quietest_rounds([0.3], 3) == [0]


def test_exit_code_ignores_what_a_server_does_not_offer():
    assert exit_code(["trusted", "not available"]) == 0
    assert exit_code(["trusted", "refused", "not available"]) == EXIT_REFUSED
    assert exit_code([]) == 0


def test_lines_and_table_say_why_a_result_is_missing():
    trusted = result_line("digits", TORCHSERVE_V1, judge(rounds({}, {}, {}), BOUNDS), context={"ready_s": 8.0})
    missing = result_line("digits", KSERVE_V2_GRPC, None, unavailable="this KServeServer serves no gRPC")
    assert trusted["status"] == "trusted" and trusted["ratio"] == 0.8 and trusted["ready_s"] == 8.0
    assert trusted["rps_unit"] == "instances/s"
    assert missing["status"] == "not available" and missing["ratio"] is None
    table = markdown_table([trusted, missing]).splitlines()
    assert table[0].startswith("| model | runtime | protocol | setup | raw inst/s | served inst/s | served/raw |")
    assert table[2] == ("| digits | torchserve | v1-json | shipped | 100.0 (±0%) | 80.0 (±0%) | 0.80 (±0%) "
                        "| 2.0 (±0.0) | 8.0 | yes |")
    assert table[3].endswith("| n/a: not available: this KServeServer serves no gRPC |")
