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

Each measurement is back-to-back `ModelCore.predict(instances[:batch])` calls (validation, collation, one
forward pass under inference_mode, encoding: the handlers' path minus HTTP and JSON) and, for a model that
declares v2 inputs, back-to-back `predict_decoded(decode_tensors(arrays))` on the arrays standing for the
same instances, each after one unmeasured call, for at least its share of `seconds` and `min_calls`
calls; the faster path is reported (`path`, with both in `ips_by_path`); `ips` is instances over the
elapsed time.
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

from serving_client import v2_tensors

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


class TensorPath:
    """`predict` through the model's v2 tensors: `decode_tensors` on arrays standing for the instances, then
    one forward pass; no JSON lists on the way, as a binary or gRPC request reaches the model."""

    def __init__(self, core: Any, inputs: list[dict[str, Any]]) -> None:
        self.core, self.inputs = core, inputs
        self.tensors: dict[int, dict[str, Any]] = {}

    def predict(self, chosen: list[Any]) -> Any:
        # measure() always passes a prefix of the same instances: the arrays are built once per batch size.
        if len(chosen) not in self.tensors:
            self.tensors[len(chosen)] = {t.name: t.array for t in v2_tensors(chosen, self.inputs)}
        return self.core.predict_decoded(self.core.decode_tensors(self.tensors[len(chosen)]))


def paths_of(core: Any, instances: list[Any]) -> dict[str, Any]:
    """How the model can be called in process: on the decoded JSON instances, and through its v2 tensors
    when it declares them (the cheaper of the two is the reference every protocol is held to)."""
    paths: dict[str, Any] = {"instances": core}
    inputs = type(core).v2_metadata()[0]
    if inputs:
        tensor_path = TensorPath(core, inputs)
        try:
            tensor_path.predict(instances[:1])
        except (ValueError, TypeError) as err:
            print(f"no tensor path: {err}", file=sys.stderr)
        else:
            paths["tensors"] = tensor_path
    return paths


def measure_paths(paths: dict[str, Any], instances: list[Any], command: dict[str, Any]) -> dict[str, Any]:
    """One command on every path for an equal share of its time; the fastest path's figures."""
    seconds = float(command["seconds"]) / len(paths)
    found = {name: measure(target, instances, int(command["batch"]), seconds, int(command.get("min_calls", 3)),
                           int(command.get("callers", 1))) for name, target in paths.items()}
    best = max(found, key=lambda name: found[name]["ips"])
    return {**found[best], "path": best, "ips_by_path": {name: entry["ips"] for name, entry in found.items()}}


def serve(core: Any, instances: list[Any], commands: TextIO, answers: TextIO) -> None:
    import torch

    default_threads = torch.get_num_threads()
    paths = paths_of(core, instances)
    for line in commands:
        if not line.strip():
            continue
        try:
            command = json.loads(line)
            torch.set_num_threads(int(command.get("threads") or default_threads))
            answer = measure_paths(paths, instances, command)
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
