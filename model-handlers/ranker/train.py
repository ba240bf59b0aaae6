"""Train the ranker on the synthetic implicit-feedback dataset and compare it with a popularity baseline.

    python train.py --out DIR       # writes DIR/weights.pt and DIR/metrics.json, prints the metrics

The loss is the multinomial likelihood of each user's training items under a softmax over all items
(as in Mult-VAE / sampled-softmax recommenders, but exact: 600 x 400 scores fit in one matrix), with an
L2 penalty. Full-batch steps make training deterministic without any sampling. About 1-2 s on one core.
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
from dataset import ITEMS, USERS, make_interactions, popularity_scores, recall_at_k
from model import build_model

SEED = 11
STEPS = 150
LEARNING_RATE = 0.05
L2 = 3e-4
RECALL_K = 10


def train(out_dir: Path, *, steps: int = STEPS, seed: int = SEED) -> dict[str, Any]:
    """Train, evaluate recall@10 on held-out interactions, and write ``weights.pt`` and ``metrics.json``.

    Returns:
        ``recall_at_10`` of the model and of the popularity baseline, ``lift`` (their ratio), dataset
        sizes, ``steps``, ``seed`` and ``train_seconds`` (not written to ``metrics.json``).
    """
    started = time.perf_counter()
    with deterministic(seed):
        data = make_interactions(seed)
        model = build_model()
        if (model.users, model.items) != (USERS, ITEMS):
            raise ValueError(f"model.py is sized {model.users}x{model.items}, the dataset {USERS}x{ITEMS}")
        targets = torch.from_numpy(data.train.astype(np.float32))
        everyone = torch.arange(USERS)
        optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
        model.train()
        for _ in range(steps):
            optimizer.zero_grad()
            log_probabilities = torch.log_softmax(model(everyone), dim=1)
            likelihood = (log_probabilities * targets).sum() / targets.sum()
            penalty = model.user_vectors.weight.square().sum() + model.item_vectors.weight.square().sum()
            (L2 * penalty - likelihood).backward()
            optimizer.step()
        model.eval()
        model.seen.copy_(torch.from_numpy(data.train))
        with torch.inference_mode():
            scores = model(everyone).numpy()

        model_recall = recall_at_k(scores, data, RECALL_K)
        baseline_recall = recall_at_k(popularity_scores(data), data, RECALL_K)
        metrics: dict[str, Any] = {
            "model": "ranker",
            "recall_at_10": round(model_recall, 4),
            "popularity_recall_at_10": round(baseline_recall, 4),
            "lift": round(model_recall / baseline_recall, 2),
            "users": USERS,
            "items": ITEMS,
            "train_interactions": int(data.train.sum()),
            "test_interactions": int(data.test.sum()),
            "steps": steps,
            "seed": seed,
        }
        save_weights(model, out_dir)
        save_metrics(metrics, out_dir)
    return {**metrics, "train_seconds": round(time.perf_counter() - started, 2)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train the ranker.")
    parser.add_argument("--out", type=Path, required=True, help="directory for weights.pt and metrics.json")
    parser.add_argument("--steps", type=int, default=STEPS)
    args = parser.parse_args(argv)
    print(json.dumps(train(args.out, steps=args.steps), indent=2))


if __name__ == "__main__":
    main()
