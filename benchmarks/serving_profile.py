"""Where a KServe predictor spends its CPU per request: a real ModelServer under cProfile, loaded on loopback.

    .venv/bin/python benchmarks/serving_profile.py [--model digits] [--concurrency 16] [--seconds 8]

The model is packaged as benchmarks/serving.py does, served by the local KServe host
(infra/serving/kserve_host.py) run by this script under cProfile with the event loop thread's CPU clock
(`time.thread_time`: waiting for the network and other threads' work are not counted), and loaded with
v1 JSON requests of one instance by the benchmark's socket client (closed loop, `--concurrency`
threads). On SIGTERM the host returns and the profile is written. Only the event loop's thread is
profiled; the forward passes run in the batcher's thread (their cost is the raw figure of
benchmarks/serving.py). Printed: requests served, the server's CPU per request (all threads), and the
loop thread's own time (cProfile `tottime`, so nothing is counted twice) grouped by who spends it: the
HTTP server (uvicorn, h11/httptools, asyncio), the web framework (FastAPI, Starlette, pydantic), KServe,
this project's runtime (aip_serving: guard, counter, batcher, request logs, checks), the model's core,
torch, JSON, logging, Prometheus; then the costliest functions. cProfile adds its own cost to every
Python call, so the shares, not the absolute times, are the result; the benchmark's throughput figures
are measured without it.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import runpy
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from serving_client import HttpSession, http_request, v1_body
from serving_load import tree_cpu_by_name
from serving_models import RESNET, prepare

from infra.serving.kserve_process import KServeServer
from infra.serving.processes import LOOPBACK

# First match wins: the path fragment of a function's file, and the group it counts under.
GROUPS = (
    ("aip_serving/", "aip_serving runtime (guard, counter, batcher, logs, checks)"),
    ("model-handlers/", "model core (decode, collate, encode)"),
    ("resnet18_model/", "model core (decode, collate, encode)"),
    ("/torch/", "torch"),
    ("/uvicorn/", "HTTP server (uvicorn, h11/httptools, asyncio)"),
    ("/h11/", "HTTP server (uvicorn, h11/httptools, asyncio)"),
    ("/httptools/", "HTTP server (uvicorn, h11/httptools, asyncio)"),
    ("/asyncio/", "HTTP server (uvicorn, h11/httptools, asyncio)"),
    ("selectors.py", "HTTP server (uvicorn, h11/httptools, asyncio)"),
    ("/fastapi/", "web framework (FastAPI, Starlette, pydantic)"),
    ("/starlette/", "web framework (FastAPI, Starlette, pydantic)"),
    ("/pydantic", "web framework (FastAPI, Starlette, pydantic)"),
    ("/kserve/", "KServe"),
    ("/prometheus_client/", "Prometheus client"),
    ("/logging/", "logging (stdlib, ecs-logging)"),
    ("ecs_logging", "logging (stdlib, ecs-logging)"),
    ("orjson", "JSON"),
    ("/json/", "JSON"),
    ("threading.py", "threads and queues"),
    ("queue.py", "threads and queues"),
    ("concurrent/", "threads and queues"),
)


def group_of(filename: str) -> str:
    for fragment, group in GROUPS:
        if fragment in filename:
            return group
    if filename.startswith("~") or filename.startswith("<"):
        return "built-ins (socket, select, C calls)"
    return "other Python"


def own_time_by_group(profile: Path) -> Counter[str]:
    """cProfile's `tottime` (time in a function itself) summed by group."""
    stats = pstats.Stats(str(profile))
    totals: Counter[str] = Counter()
    for (filename, _line, _name), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        totals[group_of(filename)] += tottime
    return totals


def top_functions(profile: Path, count: int = 12) -> list[tuple[str, float]]:
    stats = pstats.Stats(str(profile))
    rows = [(f"{Path(filename).name}:{name}", tottime)
            for (filename, _line, name), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items()]  # type: ignore[attr-defined]
    return sorted(rows, key=lambda row: -row[1])[:count]


def profile_host(out: Path, script: str, arguments: list[str]) -> None:
    """Run `script` as __main__; profile its main thread (CPU clock) between SIGUSR1 and SIGUSR2 only, so
    that start-up and shutdown stay out of the profile; write it to `out` when the script returns."""
    profiler = cProfile.Profile(time.thread_time)
    signal.signal(signal.SIGUSR1, lambda *_: profiler.enable())
    signal.signal(signal.SIGUSR2, lambda *_: profiler.disable())
    sys.argv = [script, *arguments]
    try:
        runpy.run_path(script, run_name="__main__")
    finally:
        profiler.disable()
        profiler.dump_stats(str(out))


def load(server: KServeServer, model: str, instance: object, concurrency: int, seconds: float) -> int:
    """Closed-loop v1 requests of one instance from `concurrency` threads; returns the 200s."""
    request = http_request("POST", LOOPBACK, server.port, f"/v1/models/{model}:predict", v1_body([instance]),
                           {"Content-Type": "application/json"})
    done: list[int] = []
    stop_at = time.perf_counter() + seconds

    def worker() -> None:
        session, ok = HttpSession(LOOPBACK, server.port, request), 0
        try:
            while time.perf_counter() < stop_at:
                status, _ = session.send()
                ok += status == 200
        finally:
            session.close()
            done.append(ok)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 120)
    return sum(done)


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    if arguments[:1] == ["--profile-host"]:
        profile_host(Path(arguments[1]), arguments[2], arguments[3:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="digits", choices=(RESNET, "digits", "ranker"))
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--side", type=int, default=224, help="resnet18 input side in pixels")
    args = parser.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="aip-serving-profile-"))
    try:
        model = prepare([args.model], {args.model: 1}, args.side, scratch)[args.model]
        profile = scratch / "kserve.prof"
        server = KServeServer([model.served], scratch / "server",
                              interpreter_args=(__file__, "--profile-host", str(profile)))
        server.start()
        try:
            server.wait_ready()
            load(server, args.model, model.instances[0], args.concurrency, 1.0)  # warm-up
            pgid = server.process_group()
            if pgid is None:
                raise RuntimeError("the server has no process group")
            before = sum(tree_cpu_by_name([pgid]).values())
            served = load(server, args.model, model.instances[0], args.concurrency, args.seconds)
            cpu = sum(tree_cpu_by_name([pgid]).values()) - before
            os.kill(pgid, signal.SIGUSR1)  # the group's leader is the host
            profiled = load(server, args.model, model.instances[0], args.concurrency, args.seconds)
            os.kill(pgid, signal.SIGUSR2)
        finally:
            server.stop()
        if not profile.is_file():
            print("the server wrote no profile (it did not exit cleanly)", file=sys.stderr)
            return 1
        totals = own_time_by_group(profile)
        whole = sum(totals.values()) or 1.0
        print(f"{args.model}, concurrency {args.concurrency}, {args.seconds:g} s: {served / args.seconds:.0f} req/s, "
              f"server CPU {cpu / max(served, 1) * 1e6:.0f} us per request (all threads); under cProfile "
              f"{profiled / args.seconds:.0f} req/s")
        print("| group | share of the server's own time |\n| --- | --- |")
        for group, seconds in totals.most_common():
            print(f"| {group} | {seconds / whole:.1%} |")
        print("\n| function | share |\n| --- | --- |")
        for name, seconds in top_functions(profile):
            print(f"| `{name}` | {seconds / whole:.1%} |")
        return 0
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
