"""Benchmark of the offline preview over synthetic organisations of growing size.

For each organisation size N (default 1, 10 and 50 teams) it builds a throw-away project in a temporary
folder: Pulumi.yaml pointing at the real ``infra/`` program, one platform stack (a copy of
``stacks/Pulumi.dev.yaml``) and N team stacks ``team001-dev`` ... built on it. A fresh child process
previews every stack, sharing one cache so the platform stack is previewed once, and reports the
start-up/import time, the wall time of the previews alone, the platform stack's share of it, seconds
per team stack (excluding the platform preview), the resources registered and its peak RSS. The
platform preview also pays for the provider submodules pulumi_aws/pulumi_kubernetes load lazily on first
use (counted as modules_loaded_while_previewing), so the per-team figure is the steady-state cost. The parent
prints a table, a JSON summary (with the linearity ratio: seconds per team stack at N=50 over N=10;
close to 1.0 means linear) and writes it to ``benchmarks/results/preview.json``.

Run: ``make benchmark-preview`` or ``.venv/bin/python benchmarks/preview.py [--teams 1,10,50]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "preview.json"
PLATFORM_STACK = "dev"


def team_name(index: int) -> str:
    return f"team{index:03d}"


def build_project(root: Path, teams: int) -> None:
    """A project in ``root`` running the real program, with one platform stack and ``teams`` team stacks."""
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    project["main"] = str(ROOT / "infra")
    (root / "Pulumi.yaml").write_text(yaml.safe_dump(project, sort_keys=False))
    stacks = root / str(project.get("stackConfigDir") or ".")
    stacks.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "stacks" / f"Pulumi.{PLATFORM_STACK}.yaml", stacks / f"Pulumi.{PLATFORM_STACK}.yaml")
    template = yaml.safe_load((ROOT / "stacks" / "Pulumi.vision-dev.yaml").read_text())
    for index in range(1, teams + 1):
        name = team_name(index)
        config = {**template["config"], "ai-platform:team": name, "ai-platform:costCenter": f"{name}-ml",
                  "ai-platform:platformStack": f"acme/ai-platform/{PLATFORM_STACK}"}
        (stacks / f"Pulumi.{name}-dev.yaml").write_text(yaml.safe_dump({"config": config}, sort_keys=False))


def child(root: Path, teams: int, spawned_at: float) -> dict[str, Any]:
    """Preview the whole organisation in ``root`` (runs in its own process)."""
    import resource
    import warnings

    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"pulumi_aws(\..*)?")
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"pulumi(\..*)?")
    # Import the program's modules now; provider submodules still load lazily during the platform preview.
    import infra.platform_stack
    import infra.team_stack  # noqa: F401
    from infra.preview.project import Project
    from infra.preview.runner import PreviewResult, run_preview

    project = Project.load(root)
    stacks = [PLATFORM_STACK] + [f"{team_name(i)}-dev" for i in range(1, teams + 1)]
    startup = time.time() - spawned_at
    cache: dict[str, PreviewResult] = {}
    results: dict[str, PreviewResult] = {}
    timings: dict[str, float] = {}
    modules_before = len(sys.modules)
    start = time.perf_counter()
    for stack in stacks:
        began = time.perf_counter()
        results[stack] = cache[stack] if stack in cache else run_preview(stack, project, cache=cache)
        cache.setdefault(stack, results[stack])
        timings[stack] = time.perf_counter() - began
    seconds = time.perf_counter() - start
    team_seconds = seconds - timings[PLATFORM_STACK]
    modules_loaded = len(sys.modules) - modules_before
    warned = sorted({w for r in results.values() for w in r.warnings})
    return {"teams": teams, "stacks_previewed": len(results),
            "resources": sum(len(r.resources) for r in results.values()),
            "platform_resources": len(results[PLATFORM_STACK].resources),
            "startup_seconds": round(startup, 3), "preview_seconds": round(seconds, 3),
            "platform_seconds": round(timings[PLATFORM_STACK], 3),
            "seconds_per_team_stack": round(team_seconds / teams, 4),
            "slowest_team_stack_seconds": round(max(timings[s] for s in stacks[1:]), 4),
            "modules_loaded_while_previewing": modules_loaded,
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "warnings": warned}


def measure(teams: int) -> dict[str, Any]:
    """Build an organisation of ``teams`` teams and preview it in a fresh child process."""
    with tempfile.TemporaryDirectory(prefix=f"aip-bench-{teams}-") as tmp:
        build_project(Path(tmp), teams)
        command = [sys.executable, __file__, "--child", tmp, "--teams", str(teams), "--spawned-at", repr(time.time())]
        done = subprocess.run(command, capture_output=True, text=True, cwd=tmp)
    if done.returncode != 0:
        raise SystemExit(f"child for {teams} teams failed (exit {done.returncode}):\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def report(runs: list[dict[str, Any]]) -> dict[str, Any]:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Offline preview of a whole organisation (fresh process per size)")
    columns = {"teams": "teams", "stacks_previewed": "stacks", "resources": "resources",
               "startup_seconds": "start-up s", "preview_seconds": "preview s", "platform_seconds": "platform s",
               "seconds_per_team_stack": "s / team stack", "peak_rss_mib": "peak RSS MiB"}
    for title in columns.values():
        table.add_column(title, justify="right")
    for run in runs:
        table.add_row(*(str(run[key]) for key in columns))
    by_size = {run["teams"]: run for run in runs}
    ratio = None
    if 10 in by_size and 50 in by_size:
        ratio = round(by_size[50]["seconds_per_team_stack"] / by_size[10]["seconds_per_team_stack"], 3)
    summary = {"python": platform.python_version(), "machine": platform.machine(), "runs": runs,
               "linearity_per_team_50_over_10": ratio}
    console = Console(width=None if sys.stdout.isatty() else 130)
    console.print(table)
    console.print(f"linearity (s per team stack, N=50 / N=10): {ratio if ratio is not None else 'n/a'}")
    print(json.dumps(summary, indent=2))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2) + "\n")
    console.print(f"written to {RESULTS.relative_to(ROOT)}")
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teams", default="1,10,50", help="comma-separated organisation sizes (default 1,10,50)")
    parser.add_argument("--child", metavar="ROOT", help=argparse.SUPPRESS)
    parser.add_argument("--spawned-at", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sizes = [int(n) for n in args.teams.split(",") if n.strip()]
    if args.child:
        spawned_at = args.spawned_at if args.spawned_at is not None else time.time()
        print(json.dumps(child(Path(args.child), sizes[0], spawned_at)))
        return
    if any(n < 1 or n > 999 for n in sizes):
        parser.error("--teams: each size must be between 1 and 999")
    report([measure(n) for n in sizes])


if __name__ == "__main__":
    main()
