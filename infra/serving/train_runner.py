"""Child-process entry: run one model folder's `train(out_dir)` and write its metrics next to the weights.

Run by path (`python train_runner.py MODEL_DIR RUNTIME_DIR OUT_DIR`), not imported: every model has
its own top-level `model`/`core` modules, so two models must never share an interpreter. Standard
library only, so it needs nothing from this repository on sys.path.
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

# Not metrics.json, which a train() may write itself.
METRICS_FILE = "train-metrics.json"


def _jsonable(value: object) -> object:
    if isinstance(value, bool | int | str) or value is None:
        return value
    try:
        number = float(value)  # numpy and torch scalars
    except (TypeError, ValueError):
        return str(value)
    return number if math.isfinite(number) else str(number)


def main(model_dir: Path, runtime_dir: Path, out_dir: Path) -> None:
    sys.path[:0] = [str(model_dir), str(runtime_dir)]
    spec = importlib.util.spec_from_file_location("train", model_dir / "train.py")
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot import {model_dir / 'train.py'}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["train"] = module
    spec.loader.exec_module(module)
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics = module.train(out_dir)
    if not (out_dir / "weights.pt").is_file():
        raise SystemExit(f"{model_dir / 'train.py'}: train() wrote no {out_dir / 'weights.pt'}")
    if not isinstance(metrics, dict):
        raise SystemExit(f"{model_dir / 'train.py'}: train() must return a dict, got {type(metrics).__name__}")
    (out_dir / METRICS_FILE).write_text(json.dumps({str(k): _jsonable(v) for k, v in metrics.items()}, sort_keys=True))


if __name__ == "__main__":
    if len(sys.argv) != 4:
        raise SystemExit("usage: train_runner.py MODEL_DIR RUNTIME_DIR OUT_DIR")
    main(*(Path(arg).resolve() for arg in sys.argv[1:]))
