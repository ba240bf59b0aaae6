"""Output of benchmarks/serving.py: one JSON line per (model, runtime, protocol, set-up), the markdown table, a PNG."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from serving_plan import SHIPPED, TARGETS, Target
from serving_verdict import Verdict

TRUSTED, REFUSED, NOT_AVAILABLE = "trusted", "refused", "not available"


def result_line(model: str, target: Target, verdict: Verdict | None, *, unavailable: str | None = None,
                context: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The JSON line of one result: figures only when trusted, otherwise null with the reasons."""
    line: dict[str, Any] = {"model": model, "runtime": target.runtime, "protocol": target.protocol,
                            "setup": target.setup}
    if verdict is None:
        line.update(status=NOT_AVAILABLE, trusted=False, reasons=[f"not available: {unavailable}"])
        line.update(dict.fromkeys(("raw_rps", "served_rps", "ratio", "p50_overhead_ms")))
    else:
        line.update(status=TRUSTED if verdict.trusted else REFUSED, trusted=verdict.trusted,
                    reasons=list(verdict.reasons), **verdict.figures())
    line["rps_unit"] = "instances/s"
    line.update(context or {})
    return line


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def _with_spread(value: Any, spread: Any, digits: int) -> str:
    if value is None:
        return "-"
    return f"{_fmt(value, digits)} (±{spread / 2:.0%})" if spread is not None else _fmt(value, digits)


def line_target(line: Mapping[str, Any]) -> Target:
    """The target of a JSON line (lines of runs before `--variants` have no `setup`: the shipped settings)."""
    return Target(line["runtime"], line["protocol"], line.get("setup", SHIPPED))


def setup_cell(line: Mapping[str, Any]) -> str:
    """`shipped`, or a variant's name and its overrides."""
    setup = line.get("setup", SHIPPED)
    overrides = line.get("overrides") or {}
    if setup == SHIPPED or not overrides:
        return setup
    return f"{setup}: {', '.join(f'{key}={value}' for key, value in overrides.items())}"


def markdown_table(lines: Sequence[Mapping[str, Any]]) -> str:
    """The README table: medians over the rounds, with half the (max - min) / median spread."""
    header = ("| model | runtime | protocol | setup | raw inst/s | served inst/s | served/raw | p50 added (ms) "
              "| ready (s) | trusted |")
    rows = [header, "|" + " --- |" * (header.count("|") - 1)]
    for line in lines:
        if line["status"] == TRUSTED:
            trusted = "yes"
        else:
            trusted = ("n/a: " if line["status"] == NOT_AVAILABLE else "no: ") + "; ".join(line["reasons"])
        added = line.get("p50_overhead_ms")
        width = line.get("p50_overhead_ms_spread")
        rows.append(
            f"| {line['model']} | {line['runtime']} | {line['protocol']} | {setup_cell(line).replace('|', '/')} "
            f"| {_with_spread(line.get('raw_rps'), line.get('raw_rps_spread'), 1)} "
            f"| {_with_spread(line.get('served_rps'), line.get('served_rps_spread'), 1)} "
            f"| {_with_spread(line.get('ratio'), line.get('ratio_spread'), 2)} "
            f"| {_fmt(added, 1)}{f' (±{width / 2:.1f})' if added is not None and width is not None else ''} "
            f"| {_fmt(line.get('ready_s'), 1)} | {trusted.replace('|', '/')} |")
    return "\n".join(rows)


def print_results(results: Mapping[str, Any]) -> None:
    """The JSON lines, then the markdown table (for `--report`)."""
    for line in results["results"]:
        print(json.dumps(line))
    print()
    print(markdown_table(results["results"]))


def plot(results: Mapping[str, Any], path: Path) -> bool:
    """served/raw per result, with the range over the rounds; refused results hatched. False without matplotlib."""
    try:
        import matplotlib
    except ImportError:
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines = [line for line in results["results"] if line["status"] != NOT_AVAILABLE]
    figure, axis = plt.subplots(figsize=(max(6.0, 0.9 * len(lines) + 2), 4.5))
    for index, line in enumerate(lines):
        measured = results["models"][line["model"]]["verdicts"][line_target(line).key]
        ratios = measured.get("ratios") or []
        value = measured["measured"]["ratio"] or 0.0
        trusted = line["status"] == TRUSTED
        axis.bar(index, value, color="tab:blue" if trusted else "white", edgecolor="tab:blue",
                 hatch=None if trusted else "//")
        if ratios:
            axis.plot([index, index], [min(ratios), max(ratios)], color="black", linewidth=1)
    axis.axhline(1.0, color="black", linestyle="--", linewidth=1)
    axis.set_xticks(range(len(lines)))
    axis.set_xticklabels([f"{line['model']}\n{line['runtime']}\n{line['protocol']}"
                          + (f"\n{line['setup']}" if line.get("setup", SHIPPED) != SHIPPED else "")
                          for line in lines], fontsize=7)
    axis.set_ylabel("served / raw instances/s (median, range over rounds)")
    meta = results["meta"]
    axis.set_title(f"benchmarks/serving.py ({meta['mode']}, {meta['machine']['cpus']} CPUs); hatched: refused")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def result_lines(models: Sequence[str], records: Mapping[str, Mapping[str, Any]],
                 verdicts: Mapping[str, Mapping[Target, Verdict]], servers: Mapping[str, Any],
                 targets: Sequence[Target] = TARGETS) -> list[dict[str, Any]]:
    """One line per (model, target), in the order of `models` and `targets`; a variant's line says what it overrides."""
    lines = []
    for name in models:
        record = records[name]
        for target in targets:
            server = servers.get(target.server, {})
            context = {"overrides": server.get("overrides", {}), "description": server.get("description"),
                       "ready_s": server.get("ready_s"),
                       "concurrency": record["concurrency"], "latency_concurrency": record["latency_concurrency"],
                       "instances_per_request": record["instances_per_request"],
                       "raw_batches": record["raw_batches"], "rounds": len(record["selected_rounds"]),
                       "rounds_run": len(record["rounds"])}
            verdict = verdicts[name].get(target)
            reason = record["unavailable"].get(target.key, "not measured")
            lines.append(result_line(name, target, verdict, unavailable=reason, context=context))
    return lines
