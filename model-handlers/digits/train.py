"""Train the digits classifier on scikit-learn's bundled 8x8 digits (no download).

    python train.py --out DIR       # writes DIR/weights.pt and DIR/metrics.json, prints the metrics

Deterministic: a fixed seed, a stratified split with that seed, one CPU thread (same weights bytes on
every run on the same machine). About 4 s on one core.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from aip_serving.training import deterministic, save_metrics, save_weights
from model import build_model
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

SEED = 7
TEST_FRACTION = 0.2
EPOCHS = 25
BATCH_SIZE = 128
LEARNING_RATE = 1e-2
WEIGHT_DECAY = 1e-4


def load_split(seed: int = SEED) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pixels (0..16, float32, ``[N, 64]``) and labels, split into train and test, stratified by digit."""
    digits = load_digits()
    pixels = digits.data.astype(np.float32)
    labels = digits.target.astype(np.int64)
    train_x, test_x, train_y, test_y = train_test_split(
        pixels, labels, test_size=TEST_FRACTION, stratify=labels, random_state=seed
    )
    return train_x, test_x, train_y, test_y


def accuracy(model: nn.Module, pixels: np.ndarray, labels: np.ndarray) -> float:
    """Share of correctly classified images, in eval mode."""
    model.eval()
    with torch.inference_mode():
        predicted = model(torch.from_numpy(pixels)).argmax(dim=1).numpy()
    return float((predicted == labels).mean())


def train(out_dir: Path, *, epochs: int = EPOCHS, seed: int = SEED) -> dict[str, Any]:
    """Train, evaluate on the held-out split, and write ``weights.pt`` and ``metrics.json`` to ``out_dir``.

    Returns:
        ``test_accuracy``, ``train_accuracy``, split sizes, ``epochs``, ``seed`` and ``train_seconds``
        (the last one is not written to ``metrics.json``, which stays identical between runs).
    """
    started = time.perf_counter()
    with deterministic(seed):
        train_x, test_x, train_y, test_y = load_split(seed)
        model = build_model()
        optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
        loss_fn = nn.CrossEntropyLoss()
        inputs, targets = torch.from_numpy(train_x), torch.from_numpy(train_y)
        order = torch.Generator().manual_seed(seed)
        for _ in range(epochs):
            model.train()
            for batch in torch.randperm(len(inputs), generator=order).split(BATCH_SIZE):
                optimizer.zero_grad()
                loss_fn(model(inputs[batch]), targets[batch]).backward()
                optimizer.step()
        metrics: dict[str, Any] = {
            "model": "digits",
            "test_accuracy": round(accuracy(model, test_x, test_y), 4),
            "train_accuracy": round(accuracy(model, train_x, train_y), 4),
            "train_examples": len(train_x),
            "test_examples": len(test_x),
            "epochs": epochs,
            "seed": seed,
        }
        save_weights(model, out_dir)
        save_metrics(metrics, out_dir)
    return {**metrics, "train_seconds": round(time.perf_counter() - started, 2)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train the digits classifier.")
    parser.add_argument("--out", type=Path, required=True, help="directory for weights.pt and metrics.json")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    args = parser.parse_args(argv)
    print(json.dumps(train(args.out, epochs=args.epochs), indent=2))


if __name__ == "__main__":
    main()
