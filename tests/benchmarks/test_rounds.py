"""From recorded rounds to JSON lines and exit code (serving_rounds, serving_report), without servers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from serving_plan import KSERVE_V1, TORCHSERVE_V1
from serving_report import print_results, result_lines
from serving_rounds import judge_rounds, round_figures
from serving_verdict import EXIT_REFUSED, Bounds, exit_code


def phase(ips: float, p50: float, handler: float | None = None, other: float = 0.0, errors: int = 0,
          wrong: int = 0) -> dict[str, Any]:
    return {"ips": ips, "p50_ms": p50, "handler_p50_ms": handler, "other_cores": other, "wall_s": 2.0,
            "requests": 100, "errors": errors, "problems": ["x"] * wrong}


def a_round(index: int, *, raw: float = 100.0, served: float = 80.0, client_p50: float = 5.0, handler: float = 3.0,
            other: float = 0.0) -> dict[str, Any]:
    return {
        "round": index, "other_cores": other, "raw_ips": raw,
        "raw": {"1": {"other_cores": other, "wall_s": 1.0}, "8": {"other_cores": other, "wall_s": 1.0}},
        "phases": {key: {"latency": phase(50.0, client_p50, handler, other),
                         "throughput": phase(served, 20.0, other=other)}
                   for key in ("torchserve/v1-json", "kserve/v1-json")},
    }


def test_round_figures_pair_the_raw_run_with_the_phases_of_the_same_round():
    entry = a_round(0)
    entry["raw"]["1"]["other_cores"] = 1.0  # busy during 1 s of the 6 s this target's figures took
    entry["phases"]["kserve/v1-json"]["throughput"]["errors"] = 2
    entry["phases"]["kserve/v1-json"]["latency"]["problems"] = ["1 predictions for 2 instances"]
    figures = round_figures(entry, KSERVE_V1)
    assert figures.raw_ips == 100.0 and figures.served_ips == 80.0
    assert figures.p50_overhead_ms == 2.0
    assert figures.other_cores == pytest.approx(1 / 6)
    assert figures.requests == 200 and figures.errors == 3


def test_the_issue_case_becomes_a_refused_line_and_a_non_zero_exit(capsys):
    # Raw and served measured in different machine states: served/raw 2.18, p50 overhead -716 ms.
    rounds = [a_round(i, raw=1.0, served=2.18, client_p50=284.0, handler=1000.0) for i in range(3)]
    chosen, verdicts = judge_rounds(rounds, [TORCHSERVE_V1, KSERVE_V1], 3, Bounds(spread=0.2))
    assert chosen == [0, 1, 2]
    record = {"concurrency": 4, "latency_concurrency": 1, "instances_per_request": 1, "raw_batches": [1, 4],
              "selected_rounds": chosen, "rounds": rounds,
              "unavailable": {"kserve/v2-binary": "the model refuses v2"}}
    lines = result_lines(["resnet18"], {"resnet18": record}, {"resnet18": verdicts},
                         {"kserve": {"ready_s": 5.5}, "torchserve": {"ready_s": 8.4}})
    by_key = {(line["runtime"], line["protocol"]): line for line in lines}
    refused = by_key[("kserve", "v1-json")]
    assert refused["status"] == "refused" and refused["trusted"] is False
    assert refused["ratio"] is None and refused["p50_overhead_ms"] is None and refused["raw_rps"] is None
    assert any("served/raw 2.18" in reason for reason in refused["reasons"])
    assert any("p50 overhead -716.0 ms" in reason for reason in refused["reasons"])
    assert refused["ready_s"] == 5.5 and refused["concurrency"] == 4 and refused["rounds"] == 3
    assert by_key[("kserve", "v2-binary")]["status"] == "not available"
    assert by_key[("kserve", "v2-grpc")]["reasons"] == ["not available: not measured"]
    assert exit_code([line["status"] for line in lines]) == EXIT_REFUSED

    print_results({"results": lines})
    printed = capsys.readouterr().out.splitlines()
    assert json.loads(printed[0])["model"] == "resnet18"
    assert any(row.startswith("| resnet18 | kserve | v1-json | shipped | - | - | - | - | 5.5 | no: served/raw 2.18")
               for row in printed)


def test_a_busy_round_is_left_out_once_quieter_ones_exist():
    rounds = [a_round(0), a_round(1, served=40.0, other=1.2), a_round(2), a_round(3)]
    chosen, verdicts = judge_rounds(rounds, [KSERVE_V1], 3, Bounds(spread=0.2))
    assert chosen == [0, 2, 3]
    assert verdicts[KSERVE_V1].trusted and verdicts[KSERVE_V1].served_rps == 80.0
