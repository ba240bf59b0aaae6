"""One model's rounds (benchmarks/serving.py): raw reference and phases interleaved, verdicts, extra rounds.

Round r of a model runs each available target, the variants' among them, in the order
`serving_plan.round_order` gives for r: its latency phase, then its throughput phase flanked by the raw
reference (serving_raw.py in the model's long-lived worker, at each batch size of
`serving_plan.raw_batch_sizes` for the largest batchSize of the servers measured) right before and right
after it, so each ratio pairs figures measured seconds apart. The results are judged
(serving_verdict.judge) on the model's quietest rounds; while one is refused the model gets another
round, up to the mode's bound. Before its first round and each extra one it waits, within the mode's
bound, for processes outside the benchmark to calm down.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from serving_load import OtherCpu, Phase, run_phase, wait_for_quiet
from serving_models import BenchModel, RawWorker
from serving_plan import (
    INSTANCES_PER_REQUEST,
    LATENCY_CONCURRENCY,
    THROUGHPUT_CONCURRENCY,
    Mode,
    Target,
    raw_batch_sizes,
    round_order,
)
from serving_servers import Route, Servers, handler_p50, log_offsets
from serving_verdict import Bounds, RoundFigures, Verdict, judge, quietest_rounds


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class ModelRun:
    """One model's comparison: its routes, its raw worker and its phases."""

    model: BenchModel
    routes: dict[Target, Route]
    worker: RawWorker
    servers: Servers
    mode: Mode
    concurrency: int
    raw_batches: tuple[int, ...]
    raw_callers: tuple[tuple[int, int | None], ...] = ((1, None),)

    def round(self, index: int) -> dict[str, Any]:
        """Every target's latency phase, then its throughput phase flanked by raw runs, in the rotated order.

        The raw reference is measured right before and right after each throughput phase, half its time
        each, and the two averaged: this machine's speed drifts by a third within seconds while nothing
        else runs on it, so a ratio pairs only figures measured seconds apart.
        """
        order = round_order([t for t in self.servers.targets() if t in self.routes], index)
        seconds = self.mode.phase_seconds(self.model.name)
        whole = OtherCpu().start()
        phases = {}
        for target in order:
            route = self.routes[target]
            latency = self._latency(route, seconds)
            before = self._raw()
            throughput = run_phase(Phase(self.concurrency, INSTANCES_PER_REQUEST, seconds), route.open_session,
                                   server_pids=route.pids, idle_pids=self.servers.other_pids(target.server),
                                   verify=route.verify).as_dict()
            after = self._raw()
            raw = {batch: _flanking(before[batch], after[batch]) for batch in before}
            best = max(raw.values(), key=lambda entry: entry["ips"])
            phases[target.key] = {"latency": latency, "throughput": throughput, "raw": raw,
                                  "raw_ips": best["ips"], "raw_best_batch": best["batch"]}
        raws = sorted(phase["raw_ips"] for phase in phases.values())
        median = raws[len(raws) // 2] if raws else 0.0
        best_batch = max((phase["raw_best_batch"] for phase in phases.values()), default=0)
        return {"round": index, "order": [t.key for t in order], "other_cores": round(whole.stop(), 3),
                "wall_s": round(whole.wall_s, 2), "raw_ips": median, "raw_best_batch": best_batch,
                "phases": phases}

    def _raw(self) -> dict[str, dict[str, Any]]:
        """The raw reference at each batch size for half the mode's raw time, the best of `raw_callers`."""
        found = {}
        for batch in self.raw_batches:
            meter = OtherCpu().start()
            tried = []
            for callers, threads in self.raw_callers:
                entry = self.worker.measure(batch, self.mode.raw_seconds(self.model.name) / 2 / len(self.raw_callers),
                                            callers=callers, threads=threads)
                entry.pop("latencies_ms", None)
                tried.append(entry)
            best = max(tried, key=lambda entry: entry["ips"])
            found[str(batch)] = {**best, "tried_ips": {f"{e['callers']}x{e['threads']}t": e["ips"] for e in tried},
                                 "other_cores": round(meter.stop(), 3), "wall_s": round(meter.wall_s, 3)}
        return found

    def _latency(self, route: Route, seconds: float) -> dict[str, Any]:
        offsets: dict[Path, int] = {}
        result = run_phase(Phase(LATENCY_CONCURRENCY, INSTANCES_PER_REQUEST, seconds), route.open_session,
                           server_pids=route.pids, idle_pids=self.servers.other_pids(route.target.server),
                           on_start=lambda: offsets.update(log_offsets(route.log_files)),
                           verify=route.verify).as_dict()
        handler, records = handler_p50(offsets, route.model, result["requests"])
        result["handler_p50_ms"], result["handler_records"] = handler, records
        return result


def raw_callers(workers: int, torch_threads: int | None, cpus: int | None = None
                ) -> tuple[tuple[int, int | None], ...]:
    """How the raw reference calls the model: one caller with the worker's torch threads, and, when a
    measured server runs several forward passes at once, as many callers each with its share of the CPUs
    (the model's torchThreads when set), as that server's workers do. The reference is the best of them,
    so no server's parallelism can lift a served figure above it."""
    found: list[tuple[int, int | None]] = [(1, None)]
    if workers > 1:
        share = torch_threads or max((cpus or len(os.sched_getaffinity(0))) // workers, 1)
        found.append((workers, share))
    return tuple(found)


def _flanking(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """Raw runs before and after a phase as one: instances/s over their summed time, the CPU of others."""
    elapsed = before["elapsed_s"] + after["elapsed_s"]
    wall = before["wall_s"] + after["wall_s"]
    calls = before["calls"] + after["calls"]
    return {"batch": before["batch"], "callers": before.get("callers", 1), "threads": before.get("threads"),
            "calls": calls, "elapsed_s": round(elapsed, 4),
            "ips": round(calls * before["batch"] / max(elapsed, 1e-9), 2),
            "ips_before": before["ips"], "ips_after": after["ips"],
            "other_cores": round((before["other_cores"] * before["wall_s"] + after["other_cores"] * after["wall_s"])
                                 / max(wall, 1e-9), 3), "wall_s": round(wall, 3)}


def round_figures(entry: Mapping[str, Any], target: Target) -> RoundFigures:
    """One round of one target: the raw runs flanking its throughput phase and its two phases."""
    phase = entry["phases"][target.key]
    latency, throughput = phase["latency"], phase["throughput"]
    raw_runs = phase.get("raw", entry.get("raw", {}))
    spans = [(r["other_cores"], r["wall_s"]) for r in raw_runs.values()]
    spans += [(p["other_cores"], p["wall_s"]) for p in (latency, throughput)]
    other = sum(cores * wall for cores, wall in spans) / max(sum(wall for _, wall in spans), 1e-9)
    handler = latency.get("handler_p50_ms")
    return RoundFigures(
        raw_ips=phase.get("raw_ips", entry["raw_ips"]), served_ips=throughput["ips"],
        p50_overhead_ms=latency["p50_ms"] - handler if handler is not None else None,
        other_cores=other,
        requests=latency["requests"] + throughput["requests"],
        errors=sum(p["errors"] + len(p["problems"]) for p in (latency, throughput)),
    )


def judge_rounds(rounds: Sequence[Mapping[str, Any]], targets: Sequence[Target], wanted: int, bounds: Bounds
                 ) -> tuple[list[int], dict[Target, Verdict]]:
    """The quietest `wanted` rounds and each target's verdict on them."""
    chosen = quietest_rounds([r["other_cores"] for r in rounds], wanted)
    return chosen, {t: judge([round_figures(rounds[i], t) for i in chosen], bounds) for t in targets}


@dataclass(frozen=True)
class ModelResult:
    """A model's rounds and settings as recorded in the results file, and the verdict of each target measured."""

    record: dict[str, Any]
    verdicts: dict[Target, Verdict]


def measure_model(model: BenchModel, servers: Servers, scratch: Path, mode: Mode, bounds: Bounds,
                  threads: int | None) -> ModelResult:
    """Every round of one model, extra rounds while a result is refused (within the mode's bound)."""
    concurrency = THROUGHPUT_CONCURRENCY[model.name]
    batch_sizes = servers.batch_sizes(model.name)
    batches = raw_batch_sizes(concurrency, max(batch_sizes.values(), default=model.server_batch_size),
                              INSTANCES_PER_REQUEST)
    found = servers.routes(model)
    routes = {t: r for t, r in found.items() if not isinstance(r, str)}
    unavailable = {t.key: r for t, r in found.items() if isinstance(r, str)}
    for key, reason in unavailable.items():
        log(f"{model.name} {key}: not available: {reason}")
    worker = RawWorker(model, scratch, threads)
    hello = worker.start()
    run = ModelRun(model, routes, worker, servers, mode, concurrency, batches,
                   raw_callers(max(servers.workers(model.name).values(), default=1),
                               model.served.folder.config.torch_threads))
    rounds: list[dict[str, Any]] = []
    waits = []
    try:
        waits.append(wait_for_quiet(bounds.other_cores, mode.quiet_wait_s))
        for index in range(mode.rounds):
            rounds.append(run.round(index))
            _log_round(model.name, rounds[-1])
        chosen, verdicts = judge_rounds(rounds, list(routes), mode.rounds, bounds)
        while any(not v.trusted for v in verdicts.values()) and len(rounds) < mode.rounds + mode.extra_rounds:
            refused = [t.key for t, v in verdicts.items() if not v.trusted]
            log(f"{model.name}: {', '.join(refused)} refused; extra round {len(rounds) - mode.rounds + 1} "
                f"of {mode.extra_rounds}")
            waits.append(wait_for_quiet(bounds.other_cores, mode.quiet_wait_s))
            rounds.append(run.round(len(rounds)))
            _log_round(model.name, rounds[-1])
            chosen, verdicts = judge_rounds(rounds, list(routes), mode.rounds, bounds)
    finally:
        worker.close()
    record = {
        "concurrency": concurrency, "latency_concurrency": LATENCY_CONCURRENCY,
        "instances_per_request": INSTANCES_PER_REQUEST, "server_batch_size": model.server_batch_size,
        "batch_sizes": batch_sizes,
        "raw_batches": list(batches), "raw_worker": hello, "unavailable": unavailable,
        "rounds": rounds, "selected_rounds": chosen, "extra_rounds": len(rounds) - mode.rounds,
        "quiet_waits": waits,
        "verdicts": {t.key: {"trusted": v.trusted, "reasons": list(v.reasons), "measured": v.measured(),
                             "ratios": [round(f.served_ips / f.raw_ips, 3) for f in
                                        (round_figures(rounds[i], t) for i in chosen) if f.raw_ips > 0]}
                     for t, v in verdicts.items()},
    }
    return ModelResult(record, verdicts)


def _log_round(model: str, entry: Mapping[str, Any]) -> None:
    parts = []
    for key, phases in entry["phases"].items():
        latency, throughput = phases["latency"], phases["throughput"]
        raw = f"raw {phases['raw_ips']:.1f} (b={phases['raw_best_batch']}), " if "raw_ips" in phases else ""
        handler = latency.get("handler_p50_ms")
        added = f"{latency['p50_ms'] - handler:.2f}" if handler is not None else "?"
        errors = latency["errors"] + throughput["errors"] + len(latency["problems"] + throughput["problems"])
        parts.append(f"{key} {raw}{throughput['ips']:.1f} inst/s, +{added} ms{f', {errors} errors' if errors else ''}")
    log(f"{model} round {entry['round']} ({entry['wall_s']} s, other {entry['other_cores']} cores): "
        + "; ".join(parts))


def compare_clients(route: Route, servers: Servers, concurrency: int, seconds: float, repeats: int = 2
                    ) -> dict[str, Any]:
    """Client CPU per request of the lean socket client and of httpx, alternately against one route."""
    if route.open_httpx_session is None:
        raise ValueError("client comparison needs an HTTP route")
    clients = {"socket": route.open_session, "httpx": route.open_httpx_session}
    found: dict[str, Any] = {}
    for level in sorted({LATENCY_CONCURRENCY, concurrency}):
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in clients}
        for _ in range(repeats):
            for name, opener in clients.items():
                result = run_phase(Phase(level, INSTANCES_PER_REQUEST, seconds), opener, server_pids=route.pids,
                                   idle_pids=servers.other_pids(route.target.server), verify=route.verify)
                runs[name].append(result.as_dict())
        found[f"concurrency {level}"] = {
            name: {"client_cpu_us_per_request": _mean(r["client_cpu_us_per_request"] for r in entries),
                   "client_thread_cpu_us_per_request": _mean(r["client_thread_cpu_us_per_request"] for r in entries),
                   "client_cores": _mean(r["client_cores"] for r in entries),
                   "rps": _mean(r["rps"] for r in entries), "p50_ms": _mean(r["p50_ms"] for r in entries),
                   "other_cores": _mean(r["other_cores"] for r in entries),
                   "errors": sum(r["errors"] + len(r["problems"]) for r in entries)}
            for name, entries in runs.items()
        }
    return {"route": f"{route.model} {route.target.key}", "seconds": seconds, "repeats": repeats, **found}


def _mean(values: Any) -> float:
    values = list(values)
    return round(sum(values) / len(values), 2)
