"""Serving benchmark: the in-process limit against real TorchServe and KServe servers on loopback.

Models: `digits` and `ranker` (model-handlers/) and `resnet18`, a ResNet-18-sized CNN defined in
benchmarks/resnet18_model/ (11.7 M parameters, fixed-seed random weights; input 3x224x224 pixels sent as
JSON integers 0..255, `--side` to change). One run measures, side by side:

1. raw, in a fresh interpreter (benchmarks/serving_raw.py), with torch's default 2 threads and with 1:
   `ModelCore.predict` on the decoded JSON instances of the very bodies the servers get, the forward
   pass alone, and the JSON costs. The reference ("x raw") is batch / median latency of the best run;
   for resnet18 the runs just before and after the same group of servers (its speed drifts by tens of
   percent over minutes on this shared machine), for the small models one run before and one after;
2. groups of server set-ups (serving_servers.py), started one after the other (ready time: start to
   every model ready), then loaded phase by phase in turn, so a busy spell of the machine hits every
   set-up of a group alike: TorchServe (Java frontend + Python workers, the generated config.properties,
   token auth on as with `aip serve`) and the KServe ModelServer hosting every model at their shipped
   settings, then with one torch thread, then (full mode, resnet18) two workers or processes of one
   thread, without dynamic batching, and with the body parsed by orjson in the handler;
3. each phase (serving_load.py): a closed-loop httpx generator, one thread per request in flight, at
   concurrency 1, 4 and 16 with 1 and 8 instances per request, for a fixed time and a bounded count.

Reported per phase: requests/s and instances/s over the steady window, p50/p95/p99 latency, the
handlers' own p50 from their request logs (what the server adds on the same requests), the CPU of the
generator, the server and the rest of the machine (a phase run while other processes were busy is
waited for and run once more, within bounds), and the server tree's peak RSS; per server: ready time
and peak RSS. Results: benchmarks/results/serving.json and serving.png (serving-quick.* with --quick),
markdown tables and one JSON line per (model, set-up) on stdout.

    .venv/bin/python benchmarks/serving.py            # full, about 30 minutes on 2 cores
    .venv/bin/python benchmarks/serving.py --quick    # under 3 minutes: shipped settings, 2 phases per model
    .venv/bin/python benchmarks/serving.py --report benchmarks/results/serving.json   # tables again
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from serving_load import machine_busy_seconds
from serving_models import RESNET, BenchModel, measure_raw, measure_raw_parallel, prepare
from serving_report import costs_table, markdown_table, plot, servers_table, summarize
from serving_servers import Pace, Setup, run_group, wait_for_quiet

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
MODELS = (RESNET, "digits", "ranker")
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
    """Every set-up the benchmark knows; `--setups` groups some (DEFAULT_GROUPS otherwise)."""
    cells = QUICK_CELLS if quick else FULL_CELLS
    chosen = tuple(models)
    only = (RESNET,) if RESNET in models else ()
    variant_cells = QUICK_CELLS if quick else VARIANT_CELLS
    found = [
        Setup("torchserve", "torchserve", "model-config.yaml as shipped (1 worker, batchSize 8/16, 5 ms), "
              "torch default threads (2)", chosen, cells),
        Setup("torchserve-1t", "torchserve", "model-config.yaml as shipped, OMP_NUM_THREADS=1", chosen, cells,
              threads=1),
        Setup("torchserve-1t-nobatch", "torchserve", "model-config.yaml with batchSize 1, OMP_NUM_THREADS=1", chosen,
              cells, threads=1, batch_size=1),
        Setup("torchserve-1t-delay1", "torchserve", "model-config.yaml with maxBatchDelay 1 ms, OMP_NUM_THREADS=1",
              chosen, cells, threads=1, max_batch_delay=1),
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
                    when: str, pace: Pace, quick: bool, group: int | None = None) -> None:
    """Raw runs of every model with torch's default 2 threads and with 1 thread (tagged with a group).

    A run during which other processes were busy is run once more (within the pace's retries), and the
    quieter of the two is kept: two torch threads on two cores stall whenever anything else runs.
    """
    for name, model in models.items():
        for threads in RAW_THREADS:
            attempts = []
            while True:
                quiet = wait_for_quiet(pace)
                busy0, children0, began = machine_busy_seconds(), _children_cpu(), time.perf_counter()
                entry = measure_raw(model, threads=threads, seconds=seconds, scratch=scratch, quick=quick)
                wall = time.perf_counter() - began
                other = max(machine_busy_seconds() - busy0 - (_children_cpu() - children0), 0.0) / wall
                attempts.append({**quiet, "other_cores": round(other, 3), **entry})
                if other <= pace.quiet_threshold or pace.retries <= 0 or len(attempts) > 1:
                    break
                pace.retries -= 1
            best = min(attempts, key=lambda a: a["other_cores"])
            tag = {"when": when} if group is None else {"when": when, "group": group}
            results.setdefault(name, {}).setdefault("runs", []).append({**tag, "attempts": len(attempts), **best})
            summary = ", ".join(f"b={b}: predict {v['core_predict']['p50_ms']} ms, forward {v['forward']['p50_ms']} ms"
                                for b, v in best["batches"].items())
            log(f"raw {name} {threads}t ({when}): {summary}; other cores {best['other_cores']}, "
                f"{len(attempts)} attempt(s)")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def targets(summary: Sequence[dict[str, Any]], servers: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The three targets for resnet18, for the default set-ups and for the best variant."""
    lines = [line for line in summary if line["model"] == RESNET]
    if not lines:
        return {}
    defaults = [line for line in lines if line["runtime"] in ("torchserve", "kserve")] or lines
    best_default = max(defaults, key=lambda line: line["ratio"] or 0)
    best_any = max(lines, key=lambda line: line["ratio"] or 0)
    p50 = {line["runtime"]: line.get("p50_overhead_ms") for line in lines}
    outside = {line["runtime"]: line.get("p50_outside_handler_ms") for line in lines}
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
                            "met": {k: v is not None and v <= TARGET_P50_MS for k, v in p50.items()},
                            "outside_handler_by_runtime": outside},
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


def finish(results: dict[str, Any], out: Path, stem: str) -> None:
    """Summaries and targets into `results`, then `<stem>.json`, `<stem>.png` and the tables on stdout."""
    models = list(results["models"])
    batches = results["meta"]["batches"]
    summary = summarize(results["raw"], results["servers"], batch=max(batches))
    results["summary"] = summary
    results["targets"] = targets(summary, results["servers"])
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(results, indent=2) + "\n")
    plot(results, out / f"{stem}.png")
    if results["meta"]["mode"] == "full":
        print(costs_table(results["raw"], results["models"], models, batches) + "\n")
        print(servers_table(results["servers"]) + "\n")
        print(markdown_table(results["raw"], results["servers"], models, batches) + "\n")
    for line in sorted(summary, key=lambda entry: (entry["model"] != RESNET, entry["model"])):
        print(json.dumps(line))
    log(f"wrote {out / (stem + '.json')} and {stem}.png")


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
    parser.add_argument("--report", type=Path, default=None, metavar="JSON",
                        help="measure nothing: print the tables and lines of an earlier results file, redraw its PNG")
    args = parser.parse_args(argv)
    if args.report is not None:
        results = json.loads(args.report.read_text())
        finish(results, args.report.parent, args.report.stem)
        return 0
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
                                  "process, best of the runs with torch 2 and 1 threads; resnet18: the runs "
                                  "just before and after the same group of servers"},
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
        # The resnet18 limit is measured next to each group of servers (its speed drifts by tens of percent
        # over minutes on a shared machine); the small models' limit once before and once after.
        resnet_only = {RESNET: prepared[RESNET]} if RESNET in prepared else {}
        others = {name: model for name, model in prepared.items() if name != RESNET}
        measure_all_raw(others, raw_seconds, scratch, results["raw"], "before", pace, quick)
        if not quick and RESNET in prepared:
            parallel = measure_raw_parallel(prepared[RESNET], processes=2, seconds=raw_seconds, scratch=scratch)
            results["raw"].setdefault(RESNET, {})["parallel_2x1"] = parallel
            log(f"raw resnet18, 2 processes x 1 thread together: {parallel['batches']}")
        for index, group in enumerate(groups):
            if any(RESNET in known[key].models for key in group):
                measure_all_raw(resnet_only, raw_seconds, scratch, results["raw"], "before", pace, quick, index)
            try:
                for server in run_group([known[key] for key in group], prepared, pace, scratch, log):
                    results["servers"].append({**server, "group": index})
            except Exception as err:  # one broken group must not lose the others' results
                log(f"{'+'.join(group)} failed: {type(err).__name__}: {err}")
                results["failed"].append({"keys": list(group), "error": f"{type(err).__name__}: {err}"[:4000]})
            if any(RESNET in known[key].models for key in group) and not quick:
                measure_all_raw(resnet_only, raw_seconds, scratch, results["raw"], "after", pace, quick, index)
        if not quick:
            measure_all_raw(others, raw_seconds, scratch, results["raw"], "after", pace, quick)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    results["meta"]["duration_s"] = round(time.perf_counter() - began, 1)
    finish(results, args.out, "serving-quick" if quick else "serving")
    log(f"done in {results['meta']['duration_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
