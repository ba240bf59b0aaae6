"""Load generation and server resource sampling for benchmarks/serving.py.

- `run_load`: a closed-loop load generator on loopback. `concurrency` threads, each with its own
  keep-alive `httpx.Client`, send the same pre-encoded body back to back: a warm-up of a few requests,
  then, all threads released together, measured requests until `duration_s` has passed (and at most
  `max_requests_per_worker` each). Throughput is counted over the steady window, from the common start
  until the first thread has received its last answer (until then every thread had a request in flight);
  latency percentiles are over the successful requests that ended in that window.
- `TreeSampler`: RSS of a server's process tree (every process of its process group's leader, children
  included), sampled in a background thread; the peak over the server's life and per load phase.
- CPU accounting per phase: the load generator's own CPU (this process: every thread of it, the
  sampler included), the server tree's CPU split by process name, and the rest of the machine
  (from /proc/stat), so that a starved server or a noisy neighbour shows up in the results.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
import psutil

MIB = 1024 * 1024
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# -- statistics -------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot (every core; /proc/stat)."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / CLOCK_TICKS


# -- server process trees ---------------------------------------------------------------------------


def tree(pids: Sequence[int]) -> list[psutil.Process]:
    """The processes with these pids and all their descendants (those that still exist)."""
    found: dict[int, psutil.Process] = {}
    for pid in pids:
        try:
            root = psutil.Process(pid)
            for proc in [root, *root.children(recursive=True)]:
                found[proc.pid] = proc
        except psutil.NoSuchProcess:
            continue
    return list(found.values())


def tree_rss(pids: Sequence[int]) -> int:
    total = 0
    for proc in tree(pids):
        try:
            total += proc.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total


def tree_cpu_by_name(pids: Sequence[int]) -> dict[str, float]:
    """CPU seconds (user + system) used so far by each process of the trees, summed by process name."""
    totals: Counter[str] = Counter()
    for proc in tree(pids):
        try:
            with proc.oneshot():
                times = proc.cpu_times()
                totals[process_kind(proc)] += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return dict(totals)


def process_kind(proc: psutil.Process) -> str:
    """`java` (TorchServe's frontend), `worker` (a TorchServe model worker), or `python` (anything else)."""
    name = proc.name()
    if name.startswith("java"):
        return "java"
    try:
        cmdline = " ".join(proc.cmdline())
    except (psutil.AccessDenied, psutil.ZombieProcess):
        cmdline = ""
    if "model_service_worker" in cmdline:
        return "worker"
    return "python" if "python" in name else name


class TreeSampler:
    """Samples the RSS of the server process trees every `interval` seconds until stopped.

    `peak_mib` is the peak since start; `phase_peak_mib()` the peak since the last `reset_phase()`.
    """

    def __init__(self, pids: Sequence[int], interval: float = 0.25) -> None:
        self.pids = list(pids)
        self.interval = interval
        self.peak = 0
        self.phase_peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def sample(self) -> None:
        rss = tree_rss(self.pids)
        self.samples += 1
        self.peak = max(self.peak, rss)
        self.phase_peak = max(self.phase_peak, rss)

    def reset_phase(self) -> None:
        self.phase_peak = 0

    @property
    def peak_mib(self) -> float:
        return round(self.peak / MIB, 1)

    def phase_peak_mib(self) -> float:
        return round(self.phase_peak / MIB, 1)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)


# -- the load generator -----------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadSpec:
    """One load phase.

    Attributes:
        urls: Endpoints; thread i sends to urls[i % len(urls)] (several server processes of one runtime).
        body: The request body, sent unchanged by every request.
        headers: Request headers (content type, token).
        concurrency: Threads, each with one request in flight.
        instances: Instances in the body (for instances/s).
        duration_s: Measured phase: threads send no new request after this many seconds.
        max_requests_per_worker: Bound on measured requests per thread.
        warmup_per_worker: Unmeasured requests per thread before the common start.
        timeout_s: Limit for one request.
    """

    urls: tuple[str, ...]
    body: bytes
    headers: dict[str, str]
    concurrency: int
    instances: int
    duration_s: float
    max_requests_per_worker: int = 10_000
    warmup_per_worker: int = 1
    timeout_s: float = 120.0


@dataclass
class LoadResult:
    """What one load phase measured (latencies in ms, CPU in cores = CPU seconds per wall second)."""

    concurrency: int
    batch: int
    requests: int
    errors: int
    window_s: float
    rps: float
    ips: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    client_cores: float
    server_cores: float
    other_cores: float
    client_cpu_share: float
    server_cores_by_process: dict[str, float]
    server_peak_rss_mib: float
    statuses: dict[str, int] = field(default_factory=dict)
    bounded_by_count: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Worker:
    samples: list[tuple[float, float, int]] = field(default_factory=list)  # (start, end, status)
    last_end: float = math.inf


def run_load(spec: LoadSpec, server_pids: Sequence[int], sampler: TreeSampler | None = None) -> LoadResult:
    """Run one phase and measure it (see the module docstring)."""
    workers = [_Worker() for _ in range(spec.concurrency)]
    barrier = threading.Barrier(spec.concurrency + 1)
    stop_at: list[float] = []  # set by this thread before the common start
    threads = [threading.Thread(target=_work, args=(spec, index, workers[index], barrier, stop_at),
                                name=f"load-{index}", daemon=True) for index in range(spec.concurrency)]
    for thread in threads:
        thread.start()
    warmup_limit = spec.timeout_s * (spec.warmup_per_worker + 1)
    with contextlib.suppress(threading.BrokenBarrierError):
        barrier.wait(timeout=warmup_limit)  # every thread has finished its warm-up
    if sampler is not None:
        sampler.reset_phase()
    server0, busy0 = tree_cpu_by_name(server_pids), machine_busy_seconds()
    cpu0, start = time.process_time(), time.perf_counter()
    stop_at.append(start + spec.duration_s)
    with contextlib.suppress(threading.BrokenBarrierError):
        barrier.wait(timeout=warmup_limit)  # release them together
    for thread in threads:
        thread.join(timeout=spec.duration_s + 2 * spec.timeout_s)
    stop = time.perf_counter()
    cpu1, server1, busy1 = time.process_time(), tree_cpu_by_name(server_pids), machine_busy_seconds()
    if sampler is not None:
        sampler.sample()

    wall = max(stop - start, 1e-9)
    # Steady window: until the first thread has finished its last request, every thread had one in flight.
    window_end = min((w.last_end for w in workers), default=stop)
    window_end = stop if not math.isfinite(window_end) else window_end
    window = max(window_end - start, 1e-9)
    every = [s for w in workers for s in w.samples]
    ok_in_window = [s for s in every if s[1] <= window_end + 1e-9 and s[2] == 200]
    ok = ok_in_window if len(ok_in_window) >= 5 else [s for s in every if s[2] == 200]
    latencies = [(end - begin) * 1000 for begin, end, _status in ok]
    client_cpu = cpu1 - cpu0
    server_by_name = {name: server1.get(name, 0.0) - server0.get(name, 0.0) for name in server1}
    server_cpu = sum(max(v, 0.0) for v in server_by_name.values())
    other_cpu = max((busy1 - busy0) - client_cpu - server_cpu, 0.0)
    return LoadResult(
        concurrency=spec.concurrency,
        batch=spec.instances,
        requests=len(every),
        errors=sum(1 for s in every if s[2] != 200),
        window_s=round(window, 3),
        rps=round(len(ok_in_window) / window, 2),
        ips=round(len(ok_in_window) * spec.instances / window, 2),
        p50_ms=round(percentile(latencies, 50), 2),
        p95_ms=round(percentile(latencies, 95), 2),
        p99_ms=round(percentile(latencies, 99), 2),
        mean_ms=round(sum(latencies) / len(latencies), 2) if latencies else math.nan,
        client_cores=round(client_cpu / wall, 3),
        server_cores=round(server_cpu / wall, 3),
        other_cores=round(other_cpu / wall, 3),
        client_cpu_share=round(client_cpu / max(client_cpu + server_cpu, 1e-9), 3),
        server_cores_by_process={name: round(max(v, 0.0) / wall, 3) for name, v in sorted(server_by_name.items())},
        server_peak_rss_mib=sampler.phase_peak_mib() if sampler is not None else math.nan,
        statuses=dict(Counter(str(s[2]) for s in every)),
        bounded_by_count=any(len(w.samples) >= spec.max_requests_per_worker for w in workers),
    )


def _work(spec: LoadSpec, index: int, worker: _Worker, barrier: threading.Barrier, stop_at: list[float]) -> None:
    url = spec.urls[index % len(spec.urls)]
    # trust_env=False: no proxy from the environment ever sees loopback traffic.
    with httpx.Client(timeout=spec.timeout_s, trust_env=False) as client:
        for _ in range(spec.warmup_per_worker):
            _send(client, url, spec)
        try:
            barrier.wait()  # warm-up done
            barrier.wait()  # common start
        except threading.BrokenBarrierError:
            return
        for _ in range(spec.max_requests_per_worker):
            if time.perf_counter() >= stop_at[0]:
                break
            begin = time.perf_counter()
            status = _send(client, url, spec)
            worker.samples.append((begin, time.perf_counter(), status))
        if worker.samples:
            worker.last_end = worker.samples[-1][1]


def _send(client: httpx.Client, url: str, spec: LoadSpec) -> int:
    try:
        response = client.post(url, content=spec.body, headers=spec.headers)
        response.read()
        return response.status_code
    except httpx.HTTPError:
        return 0
