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
