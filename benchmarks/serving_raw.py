"""Child-process entry of benchmarks/serving.py: in-process speed of one model, the limit a server can reach.

    python serving_raw.py SPEC.json        # prints one JSON object

SPEC: {"folder": model folder, "runtime_dir": folder holding aip_serving, "weights_dir": folder with
weights.pt, "max_batch_instances": int, "threads": torch intra-op threads, "seconds": time per
measurement, "min_calls": calls per measurement at least, "no_grad": whether to measure no_grad too,
"bodies": {"<batch>": file with the exact request body the load generator sends}}.

Run by path in its own interpreter (each model folder has top-level `core` and `model` modules, and the
thread count must be set before any work): the model folder and the runtime go on sys.path exactly as
in a TorchServe worker. For each batch it measures, one call at a time:
- `core_predict`: `ModelCore.predict(instances)` on the body's decoded JSON instances (validation,
  collation, one forward pass under inference_mode, encoding): the handlers' path minus HTTP and JSON;
- `forward`: the forward pass alone, `core.forward(inputs)` (the module plus the model's on-device
  post-processing: softmax, top-k) on the already collated batch under `torch.inference_mode()`;
- `forward_no_grad` (unless turned off): the same under `torch.no_grad()` (what inference_mode saves);
- JSON costs per request: `json.loads` (TorchServe's worker), `orjson.loads` (KServe) and encoding the
  answer with `json.dumps`.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

MAX_CALLS = 2000


def timed(call: Callable[[], Any], seconds: float, min_calls: int = 5, warmup: int = 2) -> list[float]:
    """Latencies (ms) of back-to-back calls: `warmup` calls, then at least `min_calls` and `seconds`."""
    for _ in range(warmup):
        call()
    samples: list[float] = []
    started = time.perf_counter()
    while len(samples) < min_calls or (time.perf_counter() - started < seconds and len(samples) < MAX_CALLS):
        begin = time.perf_counter()
        call()
        samples.append((time.perf_counter() - begin) * 1000)
    return samples


def summary(samples: list[float], batch: int) -> dict[str, float]:
    ordered = sorted(samples)
    mean = sum(ordered) / len(ordered)
    return {
        "calls": len(ordered),
        "mean_ms": round(mean, 3),
        "p50_ms": round(ordered[len(ordered) // 2], 3),
        "p95_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))], 3),
        "rps": round(1000 / mean, 2),
        "ips": round(1000 * batch / mean, 2),
    }


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


def main(spec_file: Path) -> None:
    spec = json.loads(spec_file.read_text())
    folder = Path(spec["folder"])
    sys.path[:0] = [str(folder), spec["runtime_dir"]]
    import torch

    torch.set_num_threads(int(spec["threads"]))
    try:
        import orjson
    except ImportError:  # orjson comes with kserve
        orjson = None
    from aip_serving.protocol import v1_response

    core = load_core_class(folder).load(spec["weights_dir"], max_batch_instances=spec["max_batch_instances"])
    seconds = float(spec["seconds"])
    results: dict[str, Any] = {"threads": torch.get_num_threads(), "batches": {}}
    for batch_text, body_file in spec["bodies"].items():
        batch = int(batch_text)
        body = Path(body_file).read_bytes()
        instances = json.loads(body)["instances"]
        inputs = core.collate(core.decode_instances(instances))
        answer = core.predict(instances)

        def forward_inference_mode(x: Any = inputs) -> Any:
            with torch.inference_mode():
                return core.forward(x)

        def forward_no_grad(x: Any = inputs) -> Any:
            with torch.no_grad():
                return core.forward(x)

        json_seconds = max(seconds / 4, 0.1)
        calls = int(spec.get("min_calls", 5))
        entry: dict[str, Any] = {
            "body_bytes": len(body),
            "core_predict": summary(timed(lambda i=instances: core.predict(i), seconds, calls), batch),
            "forward": summary(timed(forward_inference_mode, seconds, calls, warmup=1), batch),
            "json_loads_ms": round(_mean(timed(lambda b=body: json.loads(b), json_seconds, 3, 1)), 3),
            "orjson_loads_ms": round(_mean(timed(lambda b=body: orjson.loads(b), json_seconds, 3, 1)), 3)
            if orjson else None,
            "answer_dumps_ms": round(_mean(timed(lambda a=answer: json.dumps(v1_response(a)), json_seconds, 3, 1)), 3),
        }
        if spec.get("no_grad", True):
            entry["forward_no_grad"] = summary(timed(forward_no_grad, seconds / 2, calls, warmup=1), batch)
        results["batches"][str(batch)] = entry
    print(json.dumps(results))


def _mean(samples: list[float]) -> float:
    return sum(samples) / len(samples)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: serving_raw.py SPEC.json")
    main(Path(sys.argv[1]))
