"""Serving benchmark: in-process limit vs real TorchServe and KServe servers on loopback, side by side.

For each model (`digits`, `ranker` from model-handlers/ and `resnet18`, a ResNet-18-sized CNN defined in
benchmarks/resnet18_model/, fixed-seed random weights, input 3x224x224 uint8-range pixels by default)
one run measures:

1. raw, in a fresh interpreter per model (benchmarks/serving_raw.py): `ModelCore.predict` on the decoded
   JSON instances of the very body the servers get, the forward pass alone, and the JSON costs; once
   before and once after the servers (the better run is the reference: the machine is shared);
2. TorchServe (Java frontend + Python workers, the generated config.properties, token auth on as with
   `aip serve`) and the KServe ModelServer, each hosting every model at its default settings, loaded by a
   closed-loop generator (httpx, one thread per in-flight request) at concurrency 1, 4 and 16 with 1 and
   8 instances per request;
3. (full mode) variants for resnet18 only: TorchServe workers x torch threads and dynamic batching,
   the handler parsing JSON with orjson, KServe with one thread and with two one-thread processes.

Reported per load phase: requests/s and instances/s over the steady window, p50/p95/p99 latency, the
CPU of the generator, the server and the rest of the machine, and the server tree's peak RSS; per
server: time from start to every model ready, and peak RSS. Results: benchmarks/results/serving.json
and serving.png (serving-quick.* with --quick); a markdown table and one JSON line per (model, runtime)
on stdout.

    .venv/bin/python benchmarks/serving.py            # full, about 20 minutes on 2 cores
    .venv/bin/python benchmarks/serving.py --quick    # under 3 minutes: fewer, shorter phases
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from serving_models import RESNET, BenchModel, measure_raw, measure_raw_parallel, prepare
from serving_report import costs_table, markdown_table, plot, servers_table, summarize
from serving_servers import Pace, Setup, run_group, wait_for_quiet

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
MODELS = ("digits", "ranker", RESNET)
BATCHES = (1, 8)
FULL_CELLS = tuple((c, b) for b in BATCHES for c in (1, 4, 16))
QUICK_CELLS = ((1, 1), (4, 8))
VARIANT_CELLS = ((1, 1), (4, 1), (16, 1), (4, 8))
RAW_THREADS = (2, 1)
# Groups of set-ups measured side by side (phase by phase, see serving_servers.run_group).
DEFAULT_GROUPS = {
    "full": (("torchserve", "kserve"), ("torchserve-1t", "kserve-1t"), ("ts-2w1t", "ks-2p1t"),
             ("ts-2w1t-nobatch", "ts-2w1t-orjson")),
    "quick": (("torchserve", "kserve"),),
}
TARGET_RATIO, TARGET_P50_MS, TARGET_READY_S = 0.85, 3.0, 10.0


def all_setups(models: Sequence[str], quick: bool) -> list[Setup]:
    """Every set-up the benchmark knows, in run order; `--setups` picks some (see DEFAULT_SETUPS)."""
    cells = QUICK_CELLS if quick else FULL_CELLS
    chosen = tuple(models)
    only = (RESNET,) if RESNET in models else ()
    variant_cells = QUICK_CELLS if quick else VARIANT_CELLS
    found = [
        Setup("torchserve", "torchserve", "model-config.yaml as shipped (1 worker, batchSize 8/16, 5 ms), "
              "torch default threads (2)", chosen, cells),
        Setup("torchserve-1t", "torchserve", "model-config.yaml as shipped, OMP_NUM_THREADS=1", chosen, cells,
              threads=1),
        Setup("kserve", "kserve", "1 ModelServer process, torch default threads (2)", chosen, cells),
        Setup("kserve-1t", "kserve", "1 ModelServer process, OMP_NUM_THREADS=1", chosen, cells, threads=1),
    ]
    if only:
        found += [
            Setup("ts-2w1t", "torchserve", "2 workers x 1 thread, batchSize 8, 5 ms", only, variant_cells,
                  workers=2, threads=1),
            Setup("ts-2w1t-nobatch", "torchserve", "2 workers x 1 thread, batchSize 1", only, variant_cells,
                  workers=2, threads=1, batch_size=1),
            Setup("ts-2w1t-orjson", "torchserve",
                  "2 workers x 1 thread, batchSize 8, body parsed by the handler with orjson "
                  "(Content-Type: application/octet-stream)", only, variant_cells,
                  workers=2, threads=1, content_type="application/octet-stream"),
            Setup("ks-2p1t", "kserve", "2 ModelServer processes x 1 thread, client round-robin", only,
                  variant_cells, threads=1, processes=2),
        ]
    return found


def _groups_text(groups: Sequence[Sequence[str]]) -> str:
    return ",".join("+".join(group) for group in groups)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def measure_all_raw(models: dict[str, BenchModel], seconds: float, scratch: Path, results: dict[str, Any],
                    when: str, pace: Pace, quick: bool) -> None:
    """Raw runs of every model with torch's default 2 threads and with 1 thread."""
    for name, model in models.items():
        for threads in RAW_THREADS:
            quiet = wait_for_quiet(pace)
            entry = measure_raw(model, threads=threads, seconds=seconds, scratch=scratch, quick=quick)
            results.setdefault(name, {}).setdefault("runs", []).append({"when": when, **quiet, **entry})
            summary = ", ".join(f"b={b}: predict {v['core_predict']['p50_ms']} ms, forward {v['forward']['p50_ms']} ms"
                                for b, v in entry["batches"].items())
            log(f"raw {name} {threads}t ({when}): {summary}")


def targets(summary: Sequence[dict[str, Any]], servers: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The three targets for resnet18, for the default set-ups and for the best variant."""
    lines = [line for line in summary if line["model"] == RESNET]
    if not lines:
        return {}
    defaults = [line for line in lines if line["runtime"] in ("torchserve", "kserve")] or lines
    best_default = max(defaults, key=lambda line: line["ratio"] or 0)
    best_any = max(lines, key=lambda line: line["ratio"] or 0)
    p50 = {line["runtime"]: line.get("p50_overhead_ms") for line in lines}
    ready = {server["key"]: server.get("ready_s") for server in servers}
    return {
        "throughput_ratio": {"target": TARGET_RATIO, "batch": best_default["batch"],
                             "best_default": best_default["runtime"],
                             "best_default_ratio": best_default["ratio"],
                             "best_default_ratio_batch1": best_default.get("ratio_batch1"),
                             "met_by_default": (best_default["ratio"] or 0) >= TARGET_RATIO,
                             "best_variant": best_any["runtime"], "best_variant_ratio": best_any["ratio"],
                             "met_by_a_variant": (best_any["ratio"] or 0) >= TARGET_RATIO},
        "p50_overhead_ms": {"target": TARGET_P50_MS, "by_runtime": p50,
                            "met": {k: v is not None and v <= TARGET_P50_MS for k, v in p50.items()}},
        "ready_s": {"target": TARGET_READY_S, "by_server": ready,
                    "met": {k: v is not None and v <= TARGET_READY_S for k, v in ready.items()}},
    }


def machine() -> dict[str, Any]:
    import os

    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "unknown")
    versions = {name: _version(name) for name in ("torch", "torchserve", "kserve", "httpx", "orjson", "uvicorn")}
    return {"cpus": os.cpu_count(), "cpu": model, "python": platform.python_version(), **versions,
            "load_average": list(os.getloadavg())}


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter phases, no variants (under 3 minutes)")
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated subset of {','.join(MODELS)}")
    parser.add_argument("--side", type=int, default=224, help="resnet18 input side in pixels (default 224)")
    parser.add_argument("--setups", default=None,
                        help="groups of set-ups to run: set-ups in a group joined by '+', groups by ',' "
                             f"(default: {_groups_text(DEFAULT_GROUPS['full'])}; "
                             f"quick: {_groups_text(DEFAULT_GROUPS['quick'])})")
    parser.add_argument("--seconds", type=float, default=None, help="measured seconds per load phase")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for serving.json and serving.png")
    args = parser.parse_args(argv)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = sorted(set(models) - set(MODELS))
    if unknown:
        parser.error(f"unknown models {unknown}; choose from {', '.join(MODELS)}")

    quick = args.quick
    known = {setup.key: setup for setup in all_setups(models, quick)}
    groups = ([tuple(group.split("+")) for group in args.setups.split(",")] if args.setups
              else DEFAULT_GROUPS["quick" if quick else "full"])
    missing = [key for group in groups for key in group if key not in known]
    if missing:
        parser.error(f"unknown set-ups {missing}; choose from {', '.join(known)}")
    seconds = args.seconds or (2.0 if quick else 5.0)
    pace = Pace(seconds={"*": seconds, RESNET: seconds * (1.5 if quick else 1.6)},
                quiet_wait_s=0.0 if quick else 30.0, quiet_budget_s=0.0 if quick else 360.0,
                retries=0 if quick else 16)
    raw_seconds = 0.3 if quick else 2.0
    began = time.perf_counter()
    results: dict[str, Any] = {
        "meta": {"command": " ".join([Path(sys.executable).name, *sys.argv]), "mode": "quick" if quick else "full",
                 "started": datetime.now(UTC).isoformat(timespec="seconds"), "batches": list(BATCHES),
                 "image_side": args.side, "phase_seconds": dict(pace.seconds), "machine": machine(),
                 "generator": "httpx.Client per thread, closed loop, keep-alive, on 127.0.0.1",
                 "raw_reference": "batch / median latency of back-to-back ModelCore.predict calls in one "
                                  "process, best of the runs (torch 2 and 1 threads, before and after the servers)"},
        "models": {}, "raw": {}, "servers": [], "failed": [],
    }
    scratch = Path(tempfile.mkdtemp(prefix="aip-serving-bench-"))
    try:
        log(f"packaging {', '.join(models)} (resnet18 input 3x{args.side}x{args.side})")
        prepared = prepare(models, BATCHES, args.side, scratch)
        for name, model in prepared.items():
            results["models"][name] = {"version": model.served.package.version,
                                       "body_bytes": {str(b): p.stat().st_size for b, p in model.bodies.items()},
                                       "model_config": model.served.folder.config.model_dump(by_alias=True)}
        measure_all_raw(prepared, raw_seconds, scratch, results["raw"], "before", pace, quick)
        if not quick and RESNET in prepared:
            parallel = measure_raw_parallel(prepared[RESNET], processes=2, seconds=raw_seconds, scratch=scratch)
            results["raw"][RESNET]["parallel_2x1"] = parallel
            log(f"raw resnet18, 2 processes x 1 thread together: {parallel['batches']}")
        for group in groups:
            try:
                results["servers"] += run_group([known[key] for key in group], prepared, pace, scratch, log)
            except Exception as err:  # one broken group must not lose the others' results
                log(f"{'+'.join(group)} failed: {type(err).__name__}: {err}")
                results["failed"].append({"keys": list(group), "error": f"{type(err).__name__}: {err}"[:4000]})
        if not quick:
            measure_all_raw(prepared, raw_seconds, scratch, results["raw"], "after", pace, quick)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    summary = summarize(results["raw"], results["servers"], batch=max(BATCHES))
    results["summary"] = summary
    results["targets"] = targets(summary, results["servers"])
    results["meta"]["duration_s"] = round(time.perf_counter() - began, 1)
    stem = "serving-quick" if quick else "serving"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stem}.json").write_text(json.dumps(results, indent=2) + "\n")
    plot(results, args.out / f"{stem}.png")
    if not quick:
        print(costs_table(results["raw"], results["models"], models, BATCHES) + "\n")
        print(servers_table(results["servers"]) + "\n")
        print(markdown_table(results["raw"], results["servers"], models, BATCHES) + "\n")
    for line in sorted(summary, key=lambda entry: (entry["model"] != RESNET, entry["model"])):
        print(json.dumps(line))
    log(f"done in {results['meta']['duration_s']} s; wrote {args.out / (stem + '.json')} and {stem}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
