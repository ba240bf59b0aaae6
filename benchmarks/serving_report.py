"""Summaries, the markdown table and the PNG plot of benchmarks/serving.py's results."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

SATURATION_MIN_CONCURRENCY = 4
DEFAULT_THREADS = 2  # torch's intra-op threads when OMP_NUM_THREADS is not set: one per core here


def raw_reference(raw: Mapping[str, Any], batch: int, group: int | None = None,
                  threads: int | None = None) -> dict[str, Any]:
    """The in-process limit at `batch`: the best of the raw runs (torch 2 and 1 threads, before and after),
    those of the same group of servers when there are (measured minutes, not tens of minutes, apart).

    Throughput is batch / median latency of back-to-back `ModelCore.predict` calls: the median, so that a
    noisy neighbour's burst does not lower the limit the servers are compared with. `threads` keeps the
    runs with that many torch threads (for latency: a one-thread server is compared with one thread).
    """
    chosen = [run for run in raw["runs"] if group is not None and run.get("group") == group] or \
        [run for run in raw["runs"] if "group" not in run] or list(raw["runs"])
    runs = [(run["threads"], run["batches"][str(batch)]) for run in chosen
            if threads is None or run["threads"] == threads] or \
        [(run["threads"], run["batches"][str(batch)]) for run in chosen]
    threads, best = min(runs, key=lambda item: item[1]["core_predict"]["p50_ms"])
    fastest_forward = min(entry["forward"]["p50_ms"] for _, entry in runs)
    predict = best["core_predict"]
    return {
        "rps": round(1000 / predict["p50_ms"], 2),
        "ips": round(1000 * batch / predict["p50_ms"], 2),
        "p50_ms": predict["p50_ms"],
        "threads": threads,
        "forward_ips": round(1000 * batch / fastest_forward, 2),
        "forward_p50_ms": fastest_forward,
    }


def cells_of(server: Mapping[str, Any], model: str) -> list[dict[str, Any]]:
    return [cell for cell in server["cells"] if cell["model"] == model]


def saturated(cells: Iterable[Mapping[str, Any]], batch: int) -> Mapping[str, Any] | None:
    """The cell with the highest throughput at `batch` among those with several requests in flight."""
    candidates = [c for c in cells if c["batch"] == batch and c["concurrency"] >= SATURATION_MIN_CONCURRENCY]
    return max(candidates, key=lambda c: c["ips"], default=None)


def single(cells: Iterable[Mapping[str, Any]], concurrency: int = 1, batch: int = 1) -> Mapping[str, Any] | None:
    return next((c for c in cells if c["concurrency"] == concurrency and c["batch"] == batch), None)


def summarize(raw: Mapping[str, Any], servers: Sequence[Mapping[str, Any]], batch: int) -> list[dict[str, Any]]:
    """One line per (model, set-up): raw vs served throughput at `batch` under saturation, and added p50."""
    lines = []
    for server in servers:
        for model in server["models"]:
            cells = cells_of(server, model)
            group = server.get("group")
            reference = raw_reference(raw[model], batch, group)
            best = saturated(cells, batch)
            one = single(cells)
            line: dict[str, Any] = {
                "model": model,
                "runtime": server["key"],
                "batch": batch,
                "raw_rps": reference["rps"],
                "served_rps": best["rps"] if best else None,
                "ratio": round(best["ips"] / reference["ips"], 3) if best else None,
                "saturation_concurrency": best["concurrency"] if best else None,
            }
            if batch != 1:
                reference_1, best_1 = raw_reference(raw[model], 1, group), saturated(cells, 1)
                line["ratio_batch1"] = round(best_1["ips"] / reference_1["ips"], 3) if best_1 else None
            if one is not None:
                threads = server["settings"].get("threads") or DEFAULT_THREADS
                same = raw_reference(raw[model], 1, group, threads)
                line["p50_overhead_ms"] = round(one["p50_ms"] - same["p50_ms"], 2)
                line["raw_p50_ms"] = same["p50_ms"]
                # The same requests timed inside the handler: immune to the machine's drift between runs.
                handler = one.get("handler_p50_ms")
                valid = handler is not None and not math.isnan(handler)
                line["p50_outside_handler_ms"] = round(one["p50_ms"] - handler, 2) if valid else None
            line["ready_s"] = server.get("ready_s")
            line["peak_rss_mib"] = server.get("peak_rss_mib")
            lines.append(line)
    return lines


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def markdown_table(raw: Mapping[str, Any], servers: Sequence[Mapping[str, Any]], models: Sequence[str],
                   batches: Sequence[int]) -> str:
    """Every cell: throughput, latency, ratio to raw, generator CPU share, server memory.

    The raw rows show the best raw run of the whole run; `x raw` divides by the raw runs next to the
    server's own group where there are (resnet18).
    """
    header = ("| model | runtime | batch | conc. | req/s | inst/s | x raw | p50 ms | p95 ms | p99 ms "
              "| handler p50 ms | client CPU | other CPU | server MiB |")
    rows = [header, _rule(header)]
    for model in models:
        for batch in batches:
            reference = raw_reference(raw[model], batch)
            rows.append(f"| {model} | raw `ModelCore.predict` ({reference['threads']}t) | {batch} | 1 "
                        f"| {_fmt(reference['rps'])} "
                        f"| {_fmt(reference['ips'])} | 1.00 | {_fmt(reference['p50_ms'], 2)} | - | - | - | - | - | - |")
            rows.append(f"| {model} | raw forward only | {batch} | 1 | {_fmt(reference['forward_ips'] / batch)} "
                        f"| {_fmt(reference['forward_ips'])} | - | {_fmt(reference['forward_p50_ms'], 2)} "
                        "| - | - | - | - | - | - |")
            for server in servers:
                local = raw_reference(raw[model], batch, server.get("group"))
                for cell in cells_of(server, model):
                    if cell["batch"] != batch:
                        continue
                    rows.append(
                        f"| {model} | {server['key']} | {batch} | {cell['concurrency']} | {_fmt(cell['rps'])} "
                        f"| {_fmt(cell['ips'])} | {_fmt(cell['ips'] / local['ips'], 2)} "
                        f"| {_fmt(cell['p50_ms'], 2)} | {_fmt(cell['p95_ms'], 2)} | {_fmt(cell['p99_ms'], 2)} "
                        f"| {_fmt(cell.get('handler_p50_ms'), 2)} "
                        f"| {cell['client_cpu_share']:.0%} | {_fmt(cell['other_cores'], 2)} "
                        f"| {_fmt(cell['server_peak_rss_mib'], 0)} |")
    return "\n".join(rows)


def _rule(header: str) -> str:
    return "|" + " --- |" * (header.count("|") - 1)


def costs_table(raw: Mapping[str, Any], models_info: Mapping[str, Any], models: Sequence[str],
                batches: Sequence[int]) -> str:
    """Where a request's time goes in-process: JSON parsing, validation and collation, the forward pass."""
    rows = ["| model | batch | body KB | `json.loads` ms (TorchServe) | `orjson.loads` ms (KServe) "
            "| predict ms 2t / 1t | of which forward ms 2t / 1t | answer `json.dumps` ms |"]
    rows.append(_rule(rows[0]))
    for model in models:
        for batch in batches:
            by_threads = {run["threads"]: run["batches"][str(batch)] for run in raw[model]["runs"]
                          if run["when"] == "before"}
            any_run = next(iter(by_threads.values()))
            order = sorted(by_threads, reverse=True)
            predict = " / ".join(_fmt(by_threads[t]["core_predict"]["p50_ms"], 2) for t in order)
            forward = " / ".join(_fmt(by_threads[t]["forward"]["p50_ms"], 2) for t in order)
            size = models_info[model]["body_bytes"][str(batch)] / 1000
            rows.append(f"| {model} | {batch} | {_fmt(size, 1)} | {_fmt(any_run['json_loads_ms'], 2)} "
                        f"| {_fmt(any_run['orjson_loads_ms'], 2)} | {predict} | {forward} "
                        f"| {_fmt(any_run['answer_dumps_ms'], 3)} |")
    return "\n".join(rows)


def servers_table(servers: Sequence[Mapping[str, Any]]) -> str:
    rows = ["| runtime | settings | models | ready s | peak RSS MiB |", "| --- | --- | --- | --- | --- |"]
    for server in servers:
        rows.append(f"| {server['key']} | {server['description']} | {', '.join(server['models'])} "
                    f"| {_fmt(server.get('ready_s'), 1)} | {_fmt(server.get('peak_rss_mib'), 0)} |")
    return "\n".join(rows)


def plot(results: Mapping[str, Any], path: Path) -> None:
    """Instances/s and p50 latency against concurrency: one column per model, one line per set-up and batch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(results["models"])
    servers = results["servers"]
    batches = results["meta"]["batches"]
    figure, axes = plt.subplots(2, len(models), figsize=(5.2 * len(models), 8.5), squeeze=False)
    styles = {batch: style for batch, style in zip(batches, ("-", "--", ":", "-."), strict=False)}
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    keys = [server["key"] for server in servers]
    for column, model in enumerate(models):
        top, bottom = axes[0][column], axes[1][column]
        for server in servers:
            colour = colours[keys.index(server["key"]) % len(colours)]
            for batch in batches:
                cells = sorted((c for c in cells_of(server, model) if c["batch"] == batch),
                               key=lambda c: c["concurrency"])
                if not cells:
                    continue
                x = [c["concurrency"] for c in cells]
                label = f"{server['key']} b={batch}"
                top.plot(x, [c["ips"] for c in cells], styles[batch], marker="o", color=colour, label=label)
                bottom.plot(x, [c["p50_ms"] for c in cells], styles[batch], marker="o", color=colour, label=label)
        for batch in batches:
            reference = raw_reference(results["raw"][model], batch)
            top.axhline(reference["ips"], color="black", linestyle=styles[batch], linewidth=1,
                        label=f"raw b={batch}")
            bottom.axhline(reference["p50_ms"], color="black", linestyle=styles[batch], linewidth=1,
                           label=f"raw b={batch}")
        top.set_title(f"{model}: throughput")
        top.set_ylabel("instances/s (log)")
        top.set_yscale("log")
        bottom.set_title(f"{model}: p50 latency")
        bottom.set_ylabel("ms (log)")
        bottom.set_yscale("log")
        for axis in (top, bottom):
            axis.set_xscale("log", base=2)
            axis.set_xlabel("concurrency")
            axis.grid(True, alpha=0.3)
        top.legend(fontsize=6)
    meta = results["meta"]
    figure.suptitle(f"benchmarks/serving.py ({meta['mode']}, {meta['machine']['cpus']} CPUs, "
                    f"resnet18 input 3x{meta['image_side']}x{meta['image_side']})")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
