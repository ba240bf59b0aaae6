"""How `aip canary analyze` shows a verdict: a table of stable vs canary with the thresholds, or one JSON object."""

from __future__ import annotations

import math
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from infra.delivery.analysis import Check, Verdict, versions_text
from infra.delivery.canary import CanaryTarget

DECISION_STYLE = {"promote": "bold green", "hold": "bold yellow", "rollback": "bold red"}
DECISION_TEXT = {"promote": "PROMOTE", "hold": "HOLD (not enough evidence yet)", "rollback": "ROLL BACK"}


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.1f} ms"


def _count(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _result(check: Check) -> Text:
    if check.passed is None:
        return Text("not judged", style="dim")
    return Text("ok", style="green") if check.passed else Text("FAIL", style="bold red")


def verdict_table(target: CanaryTarget, result: Verdict) -> Table:
    """One row per figure: stable, canary, the threshold the canary is held to, and the check's result."""
    thresholds, stable, canary = result.thresholds, result.stable, result.canary
    checks = {c.name: c for c in result.checks}
    ratio = checks["latency ratio"].value
    increase = checks["error ratio increase"].value
    stable_version = versions_text(stable.versions[:1]) if stable.versions else target.stable_version
    # Text, not a markup string: label values from Prometheus are shown as they are, never read as rich markup.
    table = Table(title=Text(f"{target.team}/{target.model}, last {thresholds.window}: canary "
                             f"{versions_text(canary.versions) or '(no series)'} ({target.traffic_percent}% of "
                             f"requests) vs stable {stable_version}"), title_justify="left")
    table.add_column("", no_wrap=True)
    for column in ("stable", "canary", "threshold", "result"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_row("requests", _count(stable.requests), _count(canary.requests), f"≥ {thresholds.min_requests}",
                  _result(checks["requests"]))
    table.add_row("5xx ratio", _percent(stable.error_ratio), _percent(canary.error_ratio),
                  f"≤ {thresholds.max_error_ratio:.2%}", _result(checks["error ratio"]))
    table.add_row("5xx increase", "", "-" if increase is None else f"{increase:+.2%}",
                  f"≤ {thresholds.max_error_ratio_increase:+.2%}", _result(checks["error ratio increase"]))
    table.add_row(f"{result.latency_measure or 'mean'} latency", _ms(stable.latency(result.latency_measure)),
                  _ms(canary.latency(result.latency_measure)) + ("" if ratio is None else f" ({ratio:.2f}x)"),
                  f"≤ {thresholds.max_latency_ratio:g}x stable", _result(checks["latency ratio"]))
    return table


def print_verdict(target: CanaryTarget, result: Verdict, console: Console) -> None:
    console.print(verdict_table(target, result))
    console.print(Text("verdict: ", style="bold") + Text(DECISION_TEXT[result.decision],
                                                          style=DECISION_STYLE[result.decision]))
    for reason in result.reasons:
        console.print(Text(f"  - {reason}"), soft_wrap=True, highlight=False)


def verdict_document(target: CanaryTarget, result: Verdict, *, prometheus: str, exit_code: int) -> dict[str, Any]:
    """The JSON object of `--format json`: what was analyzed, the verdict, and the figures it rests on."""
    return _strict({"stack": target.stack, "team": target.team, "namespace": target.namespace, "model": target.model,
                    "stableVersion": target.stable_version, "trafficPercent": target.traffic_percent,
                    "window": result.thresholds.window, "prometheus": prometheus, "exitCode": exit_code,
                    **result.to_json()})


def _strict(value: Any) -> Any:
    """``value`` with every infinite or NaN float as None: JSON has no such numbers (json.dumps would write
    `Infinity`, which strict readers such as jq refuse). A latency ratio over a near-zero stable latency is one."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_strict(v) for v in value]
    return value
