"""Serving benchmark: real TorchServe and KServe servers on loopback against the in-process speed of the same models.

Models: `digits` and `ranker` (model-handlers/) and `resnet18`, a ResNet-18-sized CNN defined in
benchmarks/resnet18_model/ (11.7 M parameters, fixed-seed random weights; input 3x224x224 pixels sent as
JSON integers 0..255, `--side` to change).

Method. One TorchServe and one KServe ModelServer, each hosting every model at its shipped settings,
and with `--variants` one more server per tuning set-up (serving_variants.py), are started one after
the other (ready time: start to every model ready) and stay up for the whole run; what each costs
while another is loaded is measured and recorded. For each model, a long-lived child
interpreter (serving_raw.py) loads the model once, and the model is then measured in rounds. Round r
runs the raw reference, then every (runtime, protocol) target in an order rotated by r, so a busy spell
of the shared machine hits the raw and the served figures of the same round alike:

- raw reference: back-to-back `ModelCore.predict` calls (decode, collate, forward, encode) on the very
  instances the load generator sends, torch threads as the servers have them (`torchThreads` of
  model-config.yaml, else `--threads`, else torch's default), at each batch size a server can form in
  the throughput phase: 1 and min(concurrency, the model's batchSize) x instances per request, with the
  largest batchSize of the shipped settings and the variants measured; the best instances/s of those is
  the reference;
- targets: torchserve/v1-json (POST /predictions/<m>), kserve/v1-json (/v1/models/<m>:predict),
  kserve/v2-binary (/v2/models/<m>/infer with the binary tensor extension, inputs as
  `GET /v2/models/<m>` declares them) and kserve/v2-grpc (ModelInfer with raw_input_contents, when the
  server has a `grpc_target`); a target a server or model does not offer is reported with the reason;
- variants (`--variants`, or `--variants a,b`): each a named set of model-config.yaml overrides for
  one runtime (workers, batchSize, maxBatchDelay, torchThreads), applied to every model on a server of
  its own; each is one more v1-json target of every round (the protocols are compared at the shipped
  settings only), rotated with the others and judged by the same rules;
- each target gets a latency phase (1 request in flight; p50 overhead = client p50 minus the
  handlers' p50 from their request logs, on the same requests) and a throughput phase (16 requests in
  flight for digits and ranker, 4 for resnet18; 1 instance per request everywhere);
- load: a closed loop, one thread per request in flight, each with one keep-alive socket sending
  request bytes encoded once and reading the answer itself (serving_client.py); every status is
  checked, one answer per thread is verified (one prediction per instance).

Per (model, runtime, protocol) each figure is the median over the rounds (ratio: of the per-round
served/raw), with its spread ((max - min) / median; for the p50 overhead max - min in ms). A result
is refused (serving_verdict.py) when the raw or served spread exceeds 0.20 (quick) / 0.15 (full),
served/raw exceeds 1.10, the p50 overhead is below -1 ms, requests failed, or processes outside the
benchmark used more than 0.3 cores on average during its raw runs and phases. Before its first round
a model waits up to 10 s (quick) / 30 s (full) for a quiet machine; with a refused result it gets up
to 2 / 3 extra rounds, each after such a wait, and its results are judged on its quietest rounds
(chosen by the other processes' CPU, never by the figures).
A result still refused is printed with "trusted": false, null figures and the reasons, "machine
busy: ..." goes to stderr, and the command exits 3.

Output: one JSON line per (model, runtime, protocol, setup) on stdout (throughput in instances/s;
`setup` is "shipped" or the variant, whose line carries its `overrides` and `description`);
benchmarks/results/serving.json and serving.png (serving-quick.* with --quick) hold every round.

    .venv/bin/python benchmarks/serving.py --quick    # 3 rounds of 1.5-2 s phases, about 5 minutes
    .venv/bin/python benchmarks/serving.py            # 5 rounds of 4-5 s phases, about 20 minutes
    .venv/bin/python benchmarks/serving.py --variants # and ts-1w, ts-2w-nobatch, ks-nobatch: about 30 minutes
    .venv/bin/python benchmarks/serving.py --quick --models digits --variants ts-2w,ks-nobatch
    .venv/bin/python benchmarks/serving.py --report benchmarks/results/serving.json   # lines and table again
    .venv/bin/python benchmarks/serving.py --quick --models digits --compare-clients  # client CPU: socket vs httpx
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from serving_models import RESNET, prepare
from serving_plan import FULL, QUICK, TARGETS, THROUGHPUT_CONCURRENCY, Mode
from serving_report import NOT_AVAILABLE, REFUSED, line_target, plot, print_results, result_lines
from serving_rounds import ModelResult, compare_clients, log, measure_model
from serving_servers import Servers
from serving_variants import DEFAULT_VARIANTS, VARIANTS, Variant, describe_variants, parse_variants
from serving_verdict import Bounds, exit_code

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
MODELS = (RESNET, "digits", "ranker")
EXIT_FAILED = 1

DEFINITIONS = {
    "rps": "instances per second (1 instance per request, so requests per second too)",
    "raw_rps": "best instances/s of back-to-back ModelCore.predict (decode + collate + forward + encode) in one "
               "long-lived interpreter, on the very instances sent, torch threads as the servers have them, over "
               "the batch sizes the servers can form in the throughput phase: 1 and min(concurrency, batchSize of "
               "model-config.yaml, the largest of the shipped settings and the variants) x instances per request",
    "served_rps": "instances/s of the throughput phase over its steady window (every thread with a request in flight)",
    "ratio": "served_rps / raw_rps of the same round, median over the rounds",
    "p50_overhead_ms": "latency phase (1 request in flight): client p50 minus the handlers' p50 from their request "
                       "logs on the same requests",
    "spread": "(max - min) / median over the rounds; p50_overhead_ms_spread: max - min in ms",
    "ready_s": "server start to every model ready (one server per runtime and set-up hosting every model; "
               "TorchServe: every model with minWorkers READY workers)",
    "setup": "shipped: each model's model-config.yaml; else the variant (--variants) whose overrides applied to "
             "every model's config on a server of its own, measured in the same rounds (v1-json only)",
}


def machine() -> dict[str, Any]:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "unknown")
    versions = {name: _version(name) for name in ("torch", "torchserve", "kserve", "grpcio", "orjson", "uvicorn")}
    return {"cpus": os.cpu_count(), "cpu": model, "python": platform.python_version(), **versions,
            "load_average": list(os.getloadavg())}


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def variant_list(text: str) -> tuple[Variant, ...]:
    """argparse type of --variants: the message of an unknown name lists the choices."""
    try:
        return parse_variants(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds of short phases (about 5 minutes)")
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated subset of {','.join(MODELS)}")
    parser.add_argument("--side", type=int, default=224, help="resnet18 input side in pixels (default 224)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads of the servers and the raw worker (default: torch's default)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per model (default: 3 quick, 5 full)")
    parser.add_argument("--seconds", type=float, default=None, help="measured seconds per load phase, every model")
    parser.add_argument("--compare-clients", action="store_true",
                        help="measure only the client CPU per request of the socket client against httpx "
                             "(v1 routes of the first model), into client-comparison.json")
    parser.add_argument("--variants", type=variant_list, nargs="?", const="default", default=(), metavar="NAMES",
                        help="tuning set-ups measured next to the shipped settings in the same rounds (v1-json, "
                             f"a server each): comma-separated subset of {','.join(VARIANTS)}; "
                             f"alone: {','.join(DEFAULT_VARIANTS)}")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for serving(-quick).json and .png")
    parser.add_argument("--report", type=Path, default=None, metavar="JSON",
                        help="measure nothing: print the lines and the markdown table of an earlier results file")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.report is not None:
        print_results(json.loads(args.report.read_text()))
        return 0
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = sorted(set(models) - set(MODELS))
    if unknown:
        parser.error(f"unknown models {unknown}; choose from {', '.join(MODELS)}")
    mode = QUICK if args.quick else FULL
    if args.rounds or args.seconds:
        mode = Mode(mode.name, args.rounds or mode.rounds, mode.extra_rounds,
                    {"*": args.seconds} if args.seconds else mode.phase_s, mode.raw_s, mode.spread_bound,
                    mode.quiet_wait_s)
    bounds = Bounds(spread=mode.spread_bound, min_rounds=min(mode.rounds, 3))
    stem = "serving-quick" if args.quick else "serving"

    began = time.perf_counter()
    results: dict[str, Any] = {
        "meta": {"command": " ".join([Path(sys.executable).name, *(sys.argv if argv is None else argv)]),
                 "mode": mode.name, "started": datetime.now(UTC).isoformat(timespec="seconds"),
                 "rounds": mode.rounds, "extra_rounds": mode.extra_rounds, "phase_s": dict(mode.phase_s),
                 "raw_s": dict(mode.raw_s), "image_side": args.side, "torch_threads": args.threads or "torch default",
                 "bounds": bounds.describe(), "definitions": DEFINITIONS, "machine": machine(),
                 "variants": describe_variants(args.variants),
                 "generator": "closed loop, one thread per request in flight, each with one keep-alive socket "
                              "(HTTP/1.1, request bytes encoded once) or one gRPC channel, on 127.0.0.1"},
        "servers": {}, "models": {}, "failed": [],
    }
    scratch = Path(tempfile.mkdtemp(prefix="aip-serving-bench-"))
    measured: dict[str, ModelResult] = {}
    servers: Servers | None = None
    try:
        log(f"packaging {', '.join(models)} (resnet18 input 3x{args.side}x{args.side})")
        prepared = prepare(models, THROUGHPUT_CONCURRENCY, args.side, scratch)
        servers = Servers(prepared, scratch / "servers", args.threads, args.variants)
        servers.start(log)
        idle = servers.idle_cores(1.0 if args.quick else 3.0)
        log(f"idle servers use {idle} cores")
        if args.compare_clients:
            first = prepared[models[0]]
            routes = servers.routes(first)
            results["client_comparison"] = [
                compare_clients(routes[target], servers, THROUGHPUT_CONCURRENCY[first.name],
                                mode.phase_seconds(first.name))
                for target in TARGETS if target.protocol == "v1-json" and not isinstance(routes[target], str)]
            models = []
            stem = "client-comparison"
        for name in models:
            try:
                measured[name] = measure_model(prepared[name], servers, scratch, mode, bounds, args.threads)
            except Exception as err:  # one broken model must not lose the others' results
                log(f"{name} failed: {type(err).__name__}: {err}")
                results["failed"].append({"model": name, "error": f"{type(err).__name__}: {err}"[:4000]})
    finally:
        if servers is not None:
            try:
                servers.stop()
            except RuntimeError as err:
                results["failed"].append({"model": "*", "error": f"stopping the servers: {err}"})
            results["servers"] = servers.info
        shutil.rmtree(scratch, ignore_errors=True)

    done = [name for name in models if name in measured]
    results["models"] = {name: measured[name].record for name in done}
    targets = servers.targets() if servers is not None else TARGETS
    results["results"] = result_lines(done, results["models"], {name: measured[name].verdicts for name in done},
                                      results["servers"], targets)
    statuses = [line["status"] for line in results["results"]]
    code = EXIT_FAILED if results["failed"] else exit_code(statuses)
    results["meta"]["duration_s"] = round(time.perf_counter() - began, 1)
    results["exit_code"] = code
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stem}.json").write_text(json.dumps(results, indent=2) + "\n")
    drawn = bool(results["results"]) and plot(results, args.out / f"{stem}.png")
    for comparison in results.get("client_comparison", []):
        print(json.dumps(comparison), flush=True)
    for line in results["results"]:
        print(json.dumps(line), flush=True)
        if line["status"] == REFUSED:
            log(f"machine busy: {line['model']} {line_target(line).key}: {'; '.join(line['reasons'])}")
        elif line["status"] == NOT_AVAILABLE:
            log(f"{line['model']} {line_target(line).key}: {line['reasons'][0]}")
    log(f"wrote {args.out / (stem + '.json')}{' and ' + stem + '.png' if drawn else ''}; "
        f"done in {results['meta']['duration_s']} s, exit {code}")
    return code


def stop_on_signals() -> None:
    """SIGTERM and SIGHUP end the run as Ctrl-C does: through every `finally`, so that the servers and raw
    workers it started are stopped (Python's default for SIGTERM exits without running them)."""
    def interrupt(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, interrupt)


if __name__ == "__main__":
    stop_on_signals()
    sys.exit(main())
