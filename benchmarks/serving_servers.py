"""Server set-ups of benchmarks/serving.py: start real servers on loopback, load them, stop them.

A `Setup` is one runtime with one set of settings. TorchServe (`infra.serving.torchserve_process`)
gets the generated config.properties, with workers and dynamic batching taken from each model's
`model-config.yaml` unless the set-up overrides them; KServe (`infra.serving.kserve_process`) runs one
ModelServer process per `processes`, and the load generator spreads its threads over them (what
uvicorn workers or replicas behind a Service would do). `threads` sets OMP_NUM_THREADS for the server
processes, and so torch's intra-op threads in every worker. Every server is stopped in a finally block
and its ports are checked to be free afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
from serving_load import LoadSpec, TreeSampler, machine_busy_seconds, percentile, run_load, tree_cpu_by_name
from serving_models import BenchModel

from infra.serving.kserve_process import KServeServer
from infra.serving.local_server import LocalServer
from infra.serving.processes import LOOPBACK
from infra.serving.torchserve_process import TorchServeServer

Runtime = Literal["torchserve", "kserve"]
Cell = tuple[int, int]  # (concurrency, instances per request)
READY_TIMEOUT_S = 180.0


@dataclass(frozen=True)
class Setup:
    """One server configuration.

    Attributes:
        key: Short name used in the results (`torchserve`, `torchserve-2w1t`...).
        runtime: Which server.
        description: What is special about it, for the table.
        models: Models it serves (all in one server).
        cells: (concurrency, batch) load phases run against each model.
        workers: TorchServe workers per model (minWorkers = maxWorkers); None keeps model-config.yaml.
        batch_size: TorchServe batchSize; None keeps model-config.yaml.
        max_batch_delay: TorchServe maxBatchDelay (ms); None keeps model-config.yaml.
        threads: OMP_NUM_THREADS of the server processes; None leaves torch's default (one per core).
        processes: KServe ModelServer processes (one thread each is what makes several useful).
        content_type: Content-Type of the requests; TorchServe parses `application/json` itself with
            `json.loads`, any other type reaches the handler as bytes.
    """

    key: str
    runtime: Runtime
    description: str
    models: tuple[str, ...]
    cells: tuple[Cell, ...]
    workers: int | None = None
    batch_size: int | None = None
    max_batch_delay: int | None = None
    threads: int | None = None
    processes: int = 1
    content_type: str = "application/json"

    def settings(self) -> dict[str, Any]:
        return {"workers": self.workers, "batch_size": self.batch_size, "max_batch_delay": self.max_batch_delay,
                "threads": self.threads, "processes": self.processes, "content_type": self.content_type}


@dataclass
class Pace:
    """How long load phases last, and how long they may wait for a quiet machine.

    Attributes:
        seconds: Measured seconds per phase, by model (`*` for the others).
        quiet_threshold: Other processes' CPU (cores) above which a phase waits for the machine to calm.
        quiet_wait_s: Longest wait before one phase.
        quiet_budget_s: Longest total wait over the whole run (bounded even on a busy machine).
        retries: Phases that may be run a second time because other processes were busy (whole run).
    """

    seconds: Mapping[str, float]
    quiet_threshold: float = 0.3
    quiet_wait_s: float = 0.0
    quiet_budget_s: float = 0.0
    retries: int = 0

    def for_model(self, model: str) -> float:
        return self.seconds.get(model, self.seconds["*"])


@contextmanager
def environ(updates: Mapping[str, str]) -> Iterator[None]:
    """os.environ with `updates` while the servers are started (their processes copy it)."""
    saved = {key: os.environ.get(key) for key in updates}
    os.environ.update(updates)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def configured(setup: Setup, model: BenchModel) -> BenchModel:
    changes: dict[str, int] = {}
    if setup.workers is not None:
        changes.update(min_workers=setup.workers, max_workers=setup.workers)
    if setup.batch_size is not None:
        changes["batch_size"] = setup.batch_size
    if setup.max_batch_delay is not None:
        changes["max_batch_delay"] = setup.max_batch_delay
    return model.with_config(**changes) if changes else model


def build_servers(setup: Setup, models: Sequence[BenchModel], work_root: Path) -> list[LocalServer]:
    served = [configured(setup, m).served for m in models]
    if setup.runtime == "torchserve":
        if setup.processes != 1:
            raise ValueError("TorchServe set-ups run one server (use workers)")
        return [TorchServeServer(served, Path(tempfile.mkdtemp(prefix="torchserve-", dir=work_root)))]
    return [KServeServer(served, Path(tempfile.mkdtemp(prefix="kserve-", dir=work_root)))
            for _ in range(setup.processes)]


def server_ports(server: LocalServer) -> list[int]:
    if isinstance(server, TorchServeServer):
        lst = server.listeners
        return sorted({lst.inference_port, lst.management_port, lst.metrics_port, lst.grpc_inference_port,
                       lst.grpc_management_port})
    if isinstance(server, KServeServer):
        return [server.port]
    return [urlsplit(server.metrics_url()).port or 0]


def listening(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:`port` (TIME_WAIT sockets do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((LOOPBACK, port)) == 0


def wait_for_quiet(pace: Pace, pids: Sequence[int] = ()) -> dict[str, float]:
    """Wait until the rest of the machine uses under `quiet_threshold` cores, within the pace's limits.

    Other sessions share this machine; a phase run while they are busy measures them as much as us.
    """
    waited, level = 0.0, 0.0
    while True:
        busy0, ours0, own0 = machine_busy_seconds(), sum(tree_cpu_by_name(pids).values()), time.process_time()
        time.sleep(0.5)
        busy1, ours1, own1 = machine_busy_seconds(), sum(tree_cpu_by_name(pids).values()), time.process_time()
        level = max((busy1 - busy0) - (ours1 - ours0) - (own1 - own0), 0.0) / 0.5
        if level < pace.quiet_threshold or waited >= pace.quiet_wait_s or pace.quiet_budget_s <= 0:
            return {"waited_s": round(waited, 1), "other_cores_before": round(level, 2)}
        waited += 0.5
        pace.quiet_budget_s -= 0.5


def smoke(url: str, body: bytes, headers: Mapping[str, str], batch: int) -> None:
    """One request must answer 200 with one prediction per instance, or the set-up is broken."""
    with httpx.Client(timeout=120, trust_env=False) as client:
        response = client.post(url, content=body, headers=dict(headers))
    if response.status_code != 200:
        raise RuntimeError(f"{url} answered {response.status_code}: {response.text[:500]}")
    predictions = response.json().get("predictions", [])
    if len(predictions) != batch:
        raise RuntimeError(f"{url} answered {len(predictions)} predictions for {batch} instances")


def log_files(server: LocalServer) -> list[Path]:
    """Where the handlers' per-request ECS records end up: TorchServe's model_log.log, KServe's stdout."""
    name = "model_log.log" if isinstance(server, TorchServeServer) else "stdout.log"
    return [server.work_dir / "logs" / name]


def log_offsets(servers: Sequence[LocalServer]) -> dict[Path, int]:
    return {path: path.stat().st_size if path.is_file() else 0 for s in servers for path in log_files(s)}


def handler_latencies(offsets: Mapping[Path, int], model: str) -> list[float]:
    """`aip.latency_ms` of the successful requests logged since `offsets`: time spent in the handler
    (TorchServe: `handle()` for the whole batch, after TorchServe parsed the JSON; KServe: `predict()`)."""
    found = []
    for path, offset in offsets.items():
        if not path.is_file():
            continue
        with path.open("rb") as stream:
            stream.seek(offset)
            text = stream.read().decode("utf-8", "replace")
        for line in text.splitlines():
            start = line.find('{"@timestamp"')
            if start < 0 or '"aip"' not in line:
                continue
            try:
                record = json.loads(line[start:])
            except ValueError:
                continue
            aip = record.get("aip", {})
            status = record.get("http", {}).get("response", {}).get("status_code")
            if aip.get("model", {}).get("name") == model and status == 200 and "latency_ms" in aip:
                found.append(float(aip["latency_ms"]))
    return found


class Running:
    """A set-up's server(s), started; `cell` runs one load phase against them, `stop` stops them."""

    def __init__(self, setup: Setup, models: Mapping[str, BenchModel], work_root: Path) -> None:
        self.setup = setup
        self.models = [models[name] for name in setup.models]
        self.servers = build_servers(setup, self.models, work_root)
        self.started: list[LocalServer] = []
        self.sampler: TreeSampler | None = None
        self.pids: list[int] = []
        self.result: dict[str, Any] = {"key": setup.key, "runtime": setup.runtime, "description": setup.description,
                                       "models": list(setup.models), "settings": setup.settings(), "cells": []}

    def start(self) -> None:
        """Start the server(s) and wait for every model; measures the ready time (start -> all models ready)."""
        threads = self.setup.threads
        began = time.perf_counter()
        with environ({"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)} if threads else {}):
            for server in self.servers:
                server.start()
                self.started.append(server)
        self.pids = [pid for pid in (s.process_group() for s in self.servers) if pid is not None]
        self.sampler = TreeSampler(self.pids).__enter__()
        for server in self.servers:
            server.wait_ready(timeout=READY_TIMEOUT_S)
        self.result["ready_s"] = round(time.perf_counter() - began, 2)
        self.sampler.sample()
        self.result["ready_rss_mib"] = round(self.sampler.peak / 2**20, 1)

    def cell(self, model: BenchModel, concurrency: int, batch: int, pace: Pace) -> dict[str, Any]:
        """One load phase; run again (once, if the pace allows) when other processes were busy meanwhile."""
        if self.sampler is None:
            raise RuntimeError("start() first")
        headers = {**self.servers[0].request_headers(), "Content-Type": self.setup.content_type}
        urls = tuple(server.v1_url(model.name) for server in self.servers)
        body = model.body(batch)
        for url in urls:
            smoke(url, body, headers, batch)
        spec = LoadSpec(urls=urls, body=body, headers=headers, concurrency=concurrency, instances=batch,
                        duration_s=pace.for_model(model.name))
        attempts: list[dict[str, Any]] = []
        while True:
            quiet = wait_for_quiet(pace, self.pids)
            offsets = log_offsets(self.servers)
            measured = run_load(spec, self.pids, self.sampler).as_dict()
            time.sleep(0.3)  # let the servers flush their request logs
            handler = handler_latencies(offsets, model.name)
            measured["handler_p50_ms"] = round(percentile(handler, 50), 2)
            measured["handler_records"] = len(handler)
            attempts.append({"model": model.name, **quiet, **measured})
            if attempts[-1]["other_cores"] <= pace.quiet_threshold or pace.retries <= 0 or len(attempts) > 1:
                break
            pace.retries -= 1
        best = min(attempts, key=lambda a: a["other_cores"])
        best["attempts"] = len(attempts)
        if len(attempts) > 1:
            best["discarded_other_cores"] = [a["other_cores"] for a in attempts if a is not best]
        self.result["cells"].append(best)
        return best

    def stop(self) -> None:
        """Stop everything started, check that no port is left listening, remove the work dirs."""
        try:
            for server in reversed(self.started):
                server.stop()
        finally:
            if self.sampler is not None:
                self.sampler.__exit__(None, None, None)
                self.result["peak_rss_mib"] = self.sampler.peak_mib
                self.result["rss_samples"] = self.sampler.samples
            leftover = [port for server in self.servers for port in server_ports(server) if listening(port)]
            self.result["left_listening"] = leftover
            for server in self.servers:
                shutil.rmtree(server.work_dir, ignore_errors=True)
        if leftover:
            raise RuntimeError(f"{self.setup.key}: ports still listening after stop: {leftover}")


def run_group(setups: Sequence[Setup], models: Mapping[str, BenchModel], pace: Pace, scratch: Path,
              log: Callable[[str], None]) -> list[dict[str, Any]]:
    """Run set-ups side by side: all started (one after the other, each ready time measured alone), then
    every (model, concurrency, batch) phase on each set-up in turn, so that a busy spell of the shared
    machine hits neighbouring measurements of every set-up alike. Everything is stopped in the end.
    """
    work_root = scratch / "servers"
    work_root.mkdir(parents=True, exist_ok=True)
    running: list[Running] = []
    try:
        for setup in setups:
            entry = Running(setup, models, work_root)
            running.append(entry)
            wait_for_quiet(pace)
            entry.start()
            log(f"{setup.key}: ready in {entry.result['ready_s']} s, {entry.result['ready_rss_mib']} MiB")
        order = list(dict.fromkeys(name for setup in setups for name in setup.models))
        for name in order:
            cells = list(dict.fromkeys(cell for setup in setups if name in setup.models for cell in setup.cells))
            for concurrency, batch in cells:
                for entry in running:
                    if name not in entry.setup.models or (concurrency, batch) not in entry.setup.cells:
                        continue
                    cell = entry.cell(models[name], concurrency, batch, pace)
                    log(f"{entry.setup.key} {name} c={concurrency} b={batch}: {cell['rps']} req/s "
                        f"{cell['ips']} inst/s p50 {cell['p50_ms']} ms p99 {cell['p99_ms']} ms; cores: client "
                        f"{cell['client_cores']} server {cell['server_cores']} other {cell['other_cores']} "
                        f"(waited {cell['waited_s']} s, {cell['attempts']} attempt(s)); errors {cell['errors']}")
    finally:
        problems = []
        for entry in running:
            try:
                entry.stop()
            except Exception as err:  # stop the others all the same
                problems.append(f"{type(err).__name__}: {err}")
        if problems:
            raise RuntimeError("; ".join(problems))
    return [entry.result for entry in running]
