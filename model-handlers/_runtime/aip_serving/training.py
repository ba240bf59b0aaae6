"""Reproducible training: the same seed on the same machine gives the same weights, byte for byte.

Used by the models' ``train.py`` (at image build or packaging time), never while serving.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

WEIGHTS_FILE = "weights.pt"
METRICS_FILE = "metrics.json"


@contextmanager
def deterministic(seed: int) -> Iterator[None]:
    """Seed every generator and run torch on one thread with deterministic kernels.

    One thread because CPU kernels split reductions by thread count, and a different split adds floats
    in a different order; the models here are small enough that one thread trains them in seconds.
    The previous thread count and determinism flag are restored afterwards.
    """
    threads = torch.get_num_threads()
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(was_deterministic)
        torch.set_num_threads(threads)


def save_weights(model: nn.Module, out_dir: Path) -> Path:
    """Write the model's ``state_dict`` (tensors only, loadable with ``weights_only=True``)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / WEIGHTS_FILE
    state = {key: tensor.detach().cpu().contiguous() for key, tensor in model.state_dict().items()}
    torch.save(state, path)
    return path


def save_metrics(metrics: Mapping[str, Any], out_dir: Path) -> Path:
    """Write the evaluation metrics next to the weights, keys sorted so equal runs give equal files."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / METRICS_FILE
    path.write_text(json.dumps(dict(metrics), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path
