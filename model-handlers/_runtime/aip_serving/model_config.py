"""The settings of a model folder's ``model-config.yaml`` that the runtime itself reads.

TorchServe reads the same file for its own keys (``minWorkers``, ``batchSize``, ...) and hands the parsed
mapping to the handler as ``context.model_yaml_config``; the KServe predictor reads it from disk.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

MODEL_CONFIG_FILE = "model-config.yaml"
MAX_BATCH_INSTANCES = "maxBatchInstances"
TORCH_THREADS = "torchThreads"
MIN_WORKERS = "minWorkers"
# A sanity bound, far above the cores a serving pod gets; infra/serving/catalog.py applies the same one.
MAX_TORCH_THREADS = 256
BATCH_SIZE = "batchSize"
# TorchServe's own default: without the key, every request has a forward pass to itself.
DEFAULT_BATCH_SIZE = 1


def read_model_config(path: Path) -> dict[str, Any]:
    """The parsed file, or an empty mapping when there is none.

    Raises:
        ValueError: The file is not a YAML mapping.
    """
    if not path.is_file():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of settings, got {type(data).__name__}")
    return data


def max_batch_instances(config: Mapping[str, Any] | None) -> int | None:
    """``maxBatchInstances``: the most instances one request may carry, or None when unset.

    Raises:
        ValueError: Set, but not a positive integer. A model must not start with a limit it cannot apply.
    """
    if not config or config.get(MAX_BATCH_INSTANCES) is None:
        return None
    value = config[MAX_BATCH_INSTANCES]
    if type(value) is not int or value < 1:
        raise ValueError(f"{MODEL_CONFIG_FILE}: {MAX_BATCH_INSTANCES} must be a positive integer, got {value!r}")
    return value


def torch_threads(config: Mapping[str, Any] | None) -> int | None:
    """``torchThreads``: torch's intra-op threads per worker (TorchServe) or predictor process (KServe).

    None when unset: torch's default then applies, ``OMP_NUM_THREADS`` when the environment sets it, else
    one thread per physical core of the machine (the node's cores, not the pod's CPU limit).

    Raises:
        ValueError: Set, but not an integer from 1 to ``MAX_TORCH_THREADS``.
    """
    if not config or config.get(TORCH_THREADS) is None:
        return None
    value = config[TORCH_THREADS]
    if type(value) is not int or not 1 <= value <= MAX_TORCH_THREADS:
        raise ValueError(
            f"{MODEL_CONFIG_FILE}: {TORCH_THREADS} must be an integer from 1 to {MAX_TORCH_THREADS}, got {value!r}"
        )
    return value


def batch_size(config: Mapping[str, Any] | None) -> int:
    """``batchSize``: the most requests one forward pass may serve, :data:`DEFAULT_BATCH_SIZE` when unset.

    TorchServe groups that many requests per handler call; the KServe predictor takes the same key for
    its own batching, so a model folder sizes its forward passes once for both runtimes.

    Raises:
        ValueError: Set, but not a positive integer.
    """
    if not config or config.get(BATCH_SIZE) is None:
        return DEFAULT_BATCH_SIZE
    value = config[BATCH_SIZE]
    if type(value) is not int or value < 1:
        raise ValueError(f"{MODEL_CONFIG_FILE}: {BATCH_SIZE} must be a positive integer, got {value!r}")
    return value


def workers(config: Mapping[str, Any] | None) -> int:
    """``minWorkers``: forward passes that run at the same time, 1 when unset.

    TorchServe starts that many worker processes; the KServe predictor runs that many forward passes at
    once in threads (:class:`~aip_serving.batching.GreedyBatcher`). Both divide the CPUs among them for
    torch's threads when ``torchThreads`` is unset (:mod:`aip_serving.threads`).

    Raises:
        ValueError: Set, but not a positive integer.
    """
    if not config or config.get(MIN_WORKERS) is None:
        return 1
    value = config[MIN_WORKERS]
    if type(value) is not int or value < 1:
        raise ValueError(f"{MODEL_CONFIG_FILE}: {MIN_WORKERS} must be a positive integer, got {value!r}")
    return value
