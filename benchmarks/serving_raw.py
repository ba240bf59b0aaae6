"""Child-process worker of benchmarks/serving.py: the in-process speed of one model, the limit a server can reach.

    python serving_raw.py SPEC.json

SPEC: {"folder": model folder, "runtime_dir": folder holding aip_serving, "weights_dir": folder with
weights.pt, "max_batch_instances": int, "threads": torch intra-op threads or null for torch's default,
"instances": file holding the JSON list of instances the load generator sends}.

Run by path in its own interpreter (each model folder has top-level `core` and `model` modules, and the
thread count must be set before any work): the model folder and the runtime go on sys.path exactly as
in a TorchServe worker. It loads the model once, answers `{"ready": true, "threads": N}`, then one
JSON line per command line on stdin, until stdin closes:

    {"batch": 8, "seconds": 1.0}  ->  {"batch": 8, "calls", "elapsed_s", "ips", "mean_ms", "p50_ms", "latencies_ms"}
    {"batch": 8, "seconds": 1.0, "callers": 2, "threads": 1}  ->  the same, 2 threads calling at once with
                                                                  1 torch thread (then back to the start's)

Each measurement is back-to-back `ModelCore.predict(instances[:batch])` calls (validation, collation,
one forward pass under inference_mode, encoding: the handlers' path minus HTTP and JSON) after one
unmeasured call, for at least `seconds` and `min_calls` calls; `ips` is instances over the elapsed time.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, TextIO

MAX_CALLS = 100_000


def load_core_class(folder: Path) -> type:
    """The ModelCore subclass defined in `folder/core.py`."""
    from aip_serving.core import ModelCore

    spec = importlib.util.spec_from_file_location("core", folder / "core.py")
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot import {folder / 'core.py'}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["core"] = module
    spec.loader.exec_module(module)
    found = [v for v in vars(module).values()
             if inspect.isclass(v) and issubclass(v, ModelCore) and v.__module__ == "core"]
    if len(found) != 1:
        raise SystemExit(f"{folder / 'core.py'}: expected one ModelCore subclass, found {found}")
    return found[0]


def measure(core: Any, instances: list[Any], batch: int, seconds: float, min_calls: int,
            callers: int = 1) -> dict[str, Any]:
    """`callers` threads calling `ModelCore.predict` back to back at the same time (one is the classic case:
    a server's workers run that many forward passes at once, each with its share of the CPUs)."""
    if not 1 <= batch <= len(instances):
        raise ValueError(f"batch {batch} outside 1..{len(instances)} (the instances sent)")
    if callers < 1:
        raise ValueError(f"callers must be positive, got {callers}")
    chosen = instances[:batch]
    predict, clock = core.predict, time.perf_counter
    predict(chosen)
    per_caller: list[list[float]] = [[] for _ in range(callers)]
    started = clock()

    def call(latencies: list[float]) -> None:
        while len(latencies) < min_calls or (clock() - started < seconds and len(latencies) < MAX_CALLS):
            begin = clock()
            predict(chosen)
            latencies.append(clock() - begin)

    if callers == 1:
        call(per_caller[0])
    else:
        threads = [threading.Thread(target=call, args=(latencies,)) for latencies in per_caller]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    elapsed = clock() - started
    latencies = [value for values in per_caller for value in values]
    ordered = sorted(latencies)
    return {
        "batch": batch,
        "callers": callers,
        "calls": len(latencies),
        "elapsed_s": round(elapsed, 4),
        "ips": round(len(latencies) * batch / elapsed, 2),
        "mean_ms": round(sum(latencies) / len(latencies) * 1000, 3),
        "p50_ms": round(ordered[len(ordered) // 2] * 1000, 3),
        "latencies_ms": [round(v * 1000, 3) for v in latencies],
    }


def serve(core: Any, instances: list[Any], commands: TextIO, answers: TextIO) -> None:
    import torch

    default_threads = torch.get_num_threads()
    for line in commands:
        if not line.strip():
            continue
        try:
            command = json.loads(line)
            torch.set_num_threads(int(command.get("threads") or default_threads))
            answer = measure(core, instances, int(command["batch"]), float(command["seconds"]),
                             int(command.get("min_calls", 3)), int(command.get("callers", 1)))
            answer["threads"] = torch.get_num_threads()
        except Exception as err:  # the parent reads the reason instead of a dead pipe
            answer = {"error": f"{type(err).__name__}: {err}"}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()


def main(spec_file: Path) -> None:
    # Whatever the model code prints must not end up in the answers: they get their own copy of stdout.
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    sys.stdout = sys.stderr
    spec = json.loads(spec_file.read_text())
    folder = Path(spec["folder"])
    sys.path[:0] = [str(folder), spec["runtime_dir"]]
    import torch

    if spec.get("threads"):
        torch.set_num_threads(int(spec["threads"]))
    core = load_core_class(folder).load(spec["weights_dir"], max_batch_instances=spec["max_batch_instances"])
    instances = json.loads(Path(spec["instances"]).read_text())
    core.predict(instances[:1])
    answers.write(json.dumps({"ready": True, "threads": torch.get_num_threads(), "instances": len(instances)}) + "\n")
    answers.flush()
    serve(core, instances, sys.stdin, answers)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: serving_raw.py SPEC.json")
    main(Path(sys.argv[1]))
