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


def _positive_int(config: Mapping[str, Any] | None, key: str, default: Any, high: int | None = None) -> Any:
    """``config[key]`` when set, else ``default``; a set value must be an int from 1 (to ``high``).

    Raises:
        ValueError: Set, but not such an integer: a model must not start with a setting it cannot apply.
    """
    if not config or config.get(key) is None:
        return default
    value = config[key]
    if type(value) is not int or value < 1 or (high is not None and value > high):
        allowed = "a positive integer" if high is None else f"an integer from 1 to {high}"
        raise ValueError(f"{MODEL_CONFIG_FILE}: {key} must be {allowed}, got {value!r}")
    return value


def max_batch_instances(config: Mapping[str, Any] | None) -> int | None:
    """``maxBatchInstances``: the most instances one request may carry, or None when unset.

    Raises:
        ValueError: Set, but not a positive integer. A model must not start with a limit it cannot apply.
    """
    return _positive_int(config, MAX_BATCH_INSTANCES, None)


def torch_threads(config: Mapping[str, Any] | None) -> int | None:
    """``torchThreads``: torch's intra-op threads per worker (TorchServe) or predictor process (KServe).

    None when unset: torch's default then applies, ``OMP_NUM_THREADS`` when the environment sets it, else
    one thread per physical core of the machine (the node's cores, not the pod's CPU limit).

    Raises:
        ValueError: Set, but not an integer from 1 to ``MAX_TORCH_THREADS``.
    """
    return _positive_int(config, TORCH_THREADS, None, MAX_TORCH_THREADS)


def batch_size(config: Mapping[str, Any] | None) -> int:
    """``batchSize``: the most requests one forward pass may serve, :data:`DEFAULT_BATCH_SIZE` when unset.

    TorchServe groups that many requests per handler call; the KServe predictor takes the same key for
    its own batching, so a model folder sizes its forward passes once for both runtimes.

    Raises:
        ValueError: Set, but not a positive integer.
    """
    return _positive_int(config, BATCH_SIZE, DEFAULT_BATCH_SIZE)


def workers(config: Mapping[str, Any] | None) -> int:
    """``minWorkers``: forward passes that run at the same time, 1 when unset.

    TorchServe starts that many worker processes; the KServe predictor runs that many forward passes at
    once in threads (:class:`~aip_serving.batching.GreedyBatcher`). Both divide the CPUs among them for
    torch's threads when ``torchThreads`` is unset (:mod:`aip_serving.threads`).

    Raises:
        ValueError: Set, but not a positive integer.
    """
    return _positive_int(config, MIN_WORKERS, 1)
