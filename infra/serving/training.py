"""Cached training: run a model's `train.py` in a child process once per set of training inputs."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from infra.serving import train_runner
from infra.serving.catalog import Catalog, ModelFolder
from infra.serving.fingerprint import digest_inputs, tree_inputs
from infra.serving.problems import BuildFailed

# Files of a model folder that training never reads: the two serving adapters (they import TorchServe
# or KServe, which training does not), the serving settings, requests and the KServe image. Changing them
# changes the package version (infra.serving.package) but reuses the weights.
NOT_TRAINING_INPUTS = ("handler.py", "predictor.py", "model-config.yaml", "examples", "Dockerfile*", "*.dockerignore",
                       "README*")
TRAIN_TIMEOUT_S = 1800


@dataclass(frozen=True)
class TrainedWeights:
    """Weights of one model and what training reported.

    Attributes:
        weights: The `state_dict` file.
        metrics: Training's return value, made JSON-able.
        cached: True when an earlier run with the same inputs was reused.
    """

    weights: Path
    metrics: dict[str, float | int | str | bool | None]
    cached: bool


def training_key(folder: ModelFolder, catalog: Catalog) -> str:
    """Hash of everything training reads: the model folder, the shared runtime, Python and torch."""
    inputs = tree_inputs(folder.path, "model", exclude=NOT_TRAINING_INPUTS)
    inputs += tree_inputs(catalog.runtime_package, "runtime")
    inputs.append(("python", platform.python_version().encode()))
    inputs.append(("torch", installed_version("torch").encode()))
    return digest_inputs(inputs)[:32]


def train_cached(folder: ModelFolder, catalog: Catalog, cache_root: Path, *, python: str = sys.executable,
                 log_file: Path | None = None, on_training: Callable[[], None] | None = None) -> TrainedWeights:
    """Weights for the current inputs: reused from `cache_root` when present, else trained now.

    Training writes into a temporary folder that is renamed into place only when it succeeded, so an
    interrupted run never leaves weights that look valid.
    """
    key = training_key(folder, catalog)
    model_cache = cache_root / folder.name
    entry = model_cache / key
    if not (entry / "weights.pt").is_file() or not (entry / train_runner.METRICS_FILE).is_file():
        if on_training is not None:
            on_training()
        model_cache.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(prefix=".partial-", dir=model_cache))
        try:
            (partial / "tmp").mkdir()
            _run_training(folder, catalog, partial / "out", partial / "tmp", python=python, log_file=log_file)
            shutil.rmtree(entry, ignore_errors=True)
            (partial / "out").rename(entry)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
        cached = False
        # Weights of older inputs are never used again.
        for stale in model_cache.iterdir():
            if stale.name != key:
                shutil.rmtree(stale, ignore_errors=True)
    else:
        cached = True
    metrics = json.loads((entry / train_runner.METRICS_FILE).read_text())
    return TrainedWeights(weights=entry / "weights.pt", metrics=metrics, cached=cached)


def _run_training(folder: ModelFolder, catalog: Catalog, out: Path, tmp: Path, *, python: str,
                  log_file: Path | None) -> None:
    # Scratch files of training (and of anything it imports) stay in `tmp`, which is deleted afterwards.
    env = {**os.environ, "TMPDIR": str(tmp), "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTHONPATH", None)  # the child sees the model folder and the runtime, nothing of ours
    command = [python, train_runner.__file__, str(folder.path), str(catalog.runtime_dir), str(out)]
    try:
        run = subprocess.run(command, cwd=tmp, env=env, capture_output=True, text=True, timeout=TRAIN_TIMEOUT_S,
                             check=False)
    except subprocess.TimeoutExpired:
        raise BuildFailed(f"training {folder.name} took longer than {TRAIN_TIMEOUT_S} s") from None
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        log_file.write_text(run.stdout + run.stderr)
    if run.returncode != 0:
        tail = "\n".join((run.stdout + run.stderr).strip().splitlines()[-15:])
        raise BuildFailed(f"training {folder.name} failed (exit {run.returncode}):\n{tail}")


def installed_version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"
