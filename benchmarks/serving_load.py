"""Load phases and resource accounting for benchmarks/serving.py.

- `run_phase`: a closed-loop load phase on loopback. `concurrency` threads, each with its own session
  (serving_client: one keep-alive connection or gRPC channel) sending its request back to back: a
  warm-up of a few requests, then, all threads released together, measured requests until
  `duration_s` has passed. Throughput is counted over the steady window, from the common start until
  the first thread has received its last answer (until then every thread had a request in flight);
  latency percentiles are over the successful requests that ended in that window. Every status is
  checked; one answer per thread is verified after the phase.
- `TreeSampler`: RSS of a server's process tree, sampled in a background thread; the peak over the run.
- CPU accounting: the client's own CPU (this process, every thread), the target server's tree split by
  process name, the other servers of the benchmark, and the rest of the machine (from /proc/stat, minus
  this process and all its descendants), so that a noisy neighbour shows up with the figures it spoiled.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

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
    """Samples the RSS of the server process trees every `interval` seconds until stopped; `peak_mib`.

    Each sample walks the trees with psutil: CPU the load generator's process pays, so not too often.
    """

    def __init__(self, pids: Sequence[int], interval: float = 0.5) -> None:
        self.pids = list(pids)
        self.interval = interval
        self.peak = 0
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

    @property
    def peak_mib(self) -> float:
        return round(self.peak / MIB, 1)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)


def own_tree_cpu() -> float:
    """CPU seconds used so far by this process and every process it started (servers, raw worker)."""
    me = psutil.Process()
    total = sum(me.cpu_times()[:2])
    for child in me.children(recursive=True):
        try:
            total += sum(child.cpu_times()[:2])
        except psutil.NoSuchProcess:
            continue
    return total


class OtherCpu:
    """CPU of processes outside the benchmark between `start()` and `stop()`, in cores."""

    def __init__(self) -> None:
        self.started = self.busy = self.ours = 0.0
        self.wall_s = self.cores = 0.0

    def start(self) -> OtherCpu:
        self.busy, self.ours, self.started = machine_busy_seconds(), own_tree_cpu(), time.perf_counter()
        return self

    def stop(self) -> float:
        self.wall_s = max(time.perf_counter() - self.started, 1e-9)
        other = (machine_busy_seconds() - self.busy) - (own_tree_cpu() - self.ours)
        self.cores = max(other, 0.0) / self.wall_s
        return self.cores


def wait_for_quiet(threshold: float, longest_s: float, step_s: float = 0.5) -> dict[str, float]:
    """Wait until processes outside the benchmark use under `threshold` cores, at most `longest_s`."""
    waited = 0.0
    while True:
        meter = OtherCpu().start()
        time.sleep(step_s)
        level = meter.stop()
        if level < threshold or waited >= longest_s:
            return {"waited_s": round(waited, 1), "other_cores": round(level, 2)}
        waited += step_s


# -- the load generator -----------------------------------------------------------------------------


class Session(Protocol):
    """One load thread's connection: `send` makes one request and returns its status and answer."""

    def send(self) -> tuple[int | str, Any]: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Phase:
    """One load phase.

    Attributes:
        concurrency: Threads, each with one request in flight.
        instances: Instances per request (for instances/s).
        duration_s: Measured phase: threads send no new request after this many seconds.
        warmup_per_worker: Unmeasured requests per thread before the common start.
        max_requests_per_worker: Bound on measured requests per thread.
        timeout_s: Limit for the warm-up and for the last request of a thread.
    """

    concurrency: int
    instances: int
    duration_s: float
    warmup_per_worker: int = 1
    max_requests_per_worker: int = 1_000_000
    timeout_s: float = 120.0


@dataclass
class PhaseResult:
    """What one load phase measured (latencies in ms, CPU in cores = CPU seconds per wall second)."""

    concurrency: int
    instances: int
    requests: int
    errors: int
    window_s: float
    wall_s: float
    rps: float
    ips: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    client_cores: float
    client_cpu_us_per_request: float
    client_thread_cpu_us_per_request: float
    server_cores: float
    server_cores_by_process: dict[str, float]
    idle_servers_cores: float
    other_cores: float
    statuses: dict[str, int] = field(default_factory=dict)
    verified: int = 0
    # Wrong answers among the verified ones, and threads that could not connect or stopped early.
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Worker:
    samples: list[tuple[float, float, int | str]] = field(default_factory=list)  # (start, end, status)
    answer: Any = None
    thread_cpu: float = 0.0
    last_end: float = math.inf
    failure: str | None = None


def run_phase(phase: Phase, open_session: Callable[[int], Session], *, server_pids: Sequence[int] = (),
              idle_pids: Sequence[int] = (), on_start: Callable[[], None] | None = None,
              verify: Callable[[Any], str | None] | None = None) -> PhaseResult:
    """Run one phase and measure it (see the module docstring).

    Args:
        phase: Concurrency, instances per request, duration.
        open_session: Session of thread i (called in that thread, before its warm-up).
        server_pids: Process groups of the server under load.
        idle_pids: Process groups of the benchmark's other servers (what they cost while idle).
        on_start: Called after every warm-up, just before the measured requests (log offsets).
        verify: What is wrong with one answer, or None; applied to one answer per thread afterwards.
    """
    workers = [_Worker() for _ in range(phase.concurrency)]
    barrier = threading.Barrier(phase.concurrency + 1)
    stop_at: list[float] = []  # set by this thread before the common start
    threads = [threading.Thread(target=_work, args=(phase, open_session, index, workers[index], barrier, stop_at),
                                name=f"load-{index}", daemon=True) for index in range(phase.concurrency)]
    for thread in threads:
        thread.start()
    warmup_limit = phase.timeout_s * (phase.warmup_per_worker + 1)
    with contextlib.suppress(threading.BrokenBarrierError):
        barrier.wait(timeout=warmup_limit)  # every thread has finished its warm-up
    if on_start is not None:
        on_start()
    server0, idle0 = tree_cpu_by_name(server_pids), sum(tree_cpu_by_name(idle_pids).values())
    other = OtherCpu().start()
    cpu0, start = time.process_time(), time.perf_counter()
    stop_at.append(start + phase.duration_s)
    with contextlib.suppress(threading.BrokenBarrierError):
        barrier.wait(timeout=warmup_limit)  # release them together
    for thread in threads:
        thread.join(timeout=phase.duration_s + 2 * phase.timeout_s)
    stop = time.perf_counter()
    cpu1, server1 = time.process_time(), tree_cpu_by_name(server_pids)
    idle1 = sum(tree_cpu_by_name(idle_pids).values())
    other_cores = other.stop()

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
    server_by_name = {name: max(server1.get(name, 0.0) - server0.get(name, 0.0), 0.0) for name in server1}
    server_cpu = sum(server_by_name.values())
    requests = max(len(every), 1)
    problems = [w.failure for w in workers if w.failure] + _verify(workers, verify)
    return PhaseResult(
        concurrency=phase.concurrency,
        instances=phase.instances,
        requests=len(every),
        errors=sum(1 for s in every if s[2] != 200) + (0 if every else phase.concurrency),
        window_s=round(window, 3),
        wall_s=round(wall, 3),
        rps=round(len(ok_in_window) / window, 2),
        ips=round(len(ok_in_window) * phase.instances / window, 2),
        p50_ms=round(percentile(latencies, 50), 3),
        p95_ms=round(percentile(latencies, 95), 3),
        p99_ms=round(percentile(latencies, 99), 3),
        client_cores=round(client_cpu / wall, 3),
        client_cpu_us_per_request=round(client_cpu / requests * 1e6, 1),
        client_thread_cpu_us_per_request=round(sum(w.thread_cpu for w in workers) / requests * 1e6, 1),
        server_cores=round(server_cpu / wall, 3),
        server_cores_by_process={name: round(v / wall, 3) for name, v in sorted(server_by_name.items())},
        idle_servers_cores=round(max(idle1 - idle0, 0.0) / wall, 3),
        other_cores=round(other_cores, 3),
        statuses=dict(Counter(str(s[2]) for s in every)),
        verified=sum(1 for w in workers if w.answer is not None),
        problems=problems,
    )


def _verify(workers: Sequence[_Worker], verify: Callable[[Any], str | None] | None) -> list[str]:
    if verify is None:
        return []
    problems = (verify(w.answer) for w in workers if w.answer is not None)
    return [problem for problem in problems if problem]


def _work(phase: Phase, open_session: Callable[[int], Session], index: int, worker: _Worker,
          barrier: threading.Barrier, stop_at: list[float]) -> None:
    session: Session | None = None
    try:
        session = open_session(index)
        for _ in range(phase.warmup_per_worker):
            session.send()
    except Exception as err:  # reported with the phase; the barrier must still see this thread
        worker.failure = f"thread {index} could not start: {type(err).__name__}: {err}"
    try:
        barrier.wait()  # warm-up done
        barrier.wait()  # common start
    except threading.BrokenBarrierError:
        worker.failure = worker.failure or f"thread {index}: the phase never started"
    if worker.failure or session is None:
        if session is not None:
            session.close()
        return
    samples, deadline, send = worker.samples, stop_at[0], session.send
    cpu0 = time.thread_time()
    try:
        for _ in range(phase.max_requests_per_worker):
            begin = time.perf_counter()
            if begin >= deadline:
                break
            status, answer = send()
            samples.append((begin, time.perf_counter(), status))
            if worker.answer is None and status == 200:
                worker.answer = answer
    except Exception as err:  # reported with the phase instead of a thread dying unseen
        worker.failure = f"thread {index} stopped: {type(err).__name__}: {err}"
    finally:
        worker.thread_cpu = time.thread_time() - cpu0
        if samples:
            worker.last_end = samples[-1][1]
        session.close()
