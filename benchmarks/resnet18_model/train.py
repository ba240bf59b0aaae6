"""Weights of the benchmark's ResNet-18-sized CNN: PyTorch's default initialisation under a fixed seed.

    python train.py --out DIR       # writes DIR/weights.pt and DIR/metrics.json

Nothing is learnt (the benchmark measures serving, not accuracy); the seed makes the weights, and so
the package version, the same on every run on the same machine.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from aip_serving.training import deterministic, save_metrics, save_weights

from model import build_model, image_side

SEED = 18


def train(out_dir: Path, *, seed: int = SEED) -> dict[str, Any]:
    """Initialise the network with ``seed`` and write ``weights.pt`` and ``metrics.json`` to ``out_dir``."""
    started = time.perf_counter()
    with deterministic(seed):
        model = build_model()
        metrics: dict[str, Any] = {
            "model": "resnet18",
            "parameters": sum(p.numel() for p in model.parameters()),
            "image_side": image_side(),
            "seed": seed,
            "trained": False,
        }
        save_weights(model, out_dir)
        save_metrics(metrics, out_dir)
    return {**metrics, "train_seconds": round(time.perf_counter() - started, 2)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write fixed-seed random weights of the ResNet-18-sized CNN.")
    parser.add_argument("--out", type=Path, required=True, help="directory for weights.pt and metrics.json")
    args = parser.parse_args(argv)
    print(json.dumps(train(args.out), indent=2))


if __name__ == "__main__":
    main()
