"""The model folders under model-handlers/ and their `model-config.yaml`, parsed once into frozen objects.

A model folder is every directory of model-handlers/ whose name does not start with `_` or `.`
(`_runtime/` is the shared runtime). Its name is the model's name everywhere (archive, KServe route,
InferenceService), so it must be a DNS label.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from infra.serving.examples import Example, load_examples
from infra.serving.problems import ModelSelectionError, ServingError, bullet_list, did_you_mean

MODEL_HANDLERS = Path(__file__).resolve().parents[2] / "model-handlers"
RUNTIME_DIR_NAME = "_runtime"
RUNTIME_PACKAGE = "aip_serving"
CONFIG_FILE = "model-config.yaml"
# What the README's contract says every model folder holds (Dockerfile and examples are optional here).
REQUIRED_FILES = ("model.py", "train.py", "core.py", "handler.py", "predictor.py", CONFIG_FILE)
# InferenceService names are DNS labels; TorchServe and KServe accept them as model names too.
MODEL_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


class ModelConfig(BaseModel):
    """TorchServe's per-model settings from `model-config.yaml` (camelCase, as TorchServe reads them).

    Defaults are TorchServe's own, so an omitted key means what it means to TorchServe.

    Attributes:
        min_workers: Worker processes started with the model.
        max_workers: Most worker processes the model may scale to.
        batch_size: Requests TorchServe groups into one handler call (dynamic batching).
        max_batch_delay: Milliseconds TorchServe waits to fill a batch.
        response_timeout: Seconds before a worker that has not answered is restarted.
        max_batch_instances: Most instances one request may carry (enforced by the handler).
        torch_threads: torch's intra-op threads in each TorchServe worker or KServe predictor process
            (`torch.set_num_threads`, applied by `aip_serving` before the weights load; TorchServe ignores
            the key). Unset: torch's default, one thread per physical core of the node (not the pod's CPU
            limit) unless the environment sets `OMP_NUM_THREADS`. Workers x threads should not exceed the
            pod's CPUs. Local KServe serving hosts every model in one process: the largest value among
            them applies (infra/serving/kserve_host.py).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    min_workers: int = Field(1, alias="minWorkers", ge=1, le=64)
    max_workers: int = Field(1, alias="maxWorkers", ge=1, le=64)
    batch_size: int = Field(1, alias="batchSize", ge=1, le=1024)
    max_batch_delay: int = Field(100, alias="maxBatchDelay", ge=0, le=60_000)
    response_timeout: int = Field(120, alias="responseTimeout", ge=1, le=3600)
    max_batch_instances: int = Field(alias="maxBatchInstances", ge=1, le=100_000)
    # Strict: the handler accepts only an int (aip_serving.model_config.torch_threads, same bound), so a
    # "2" or 2.0 that pydantic would coerce must fail here, when packaging, not when a worker loads.
    torch_threads: int | None = Field(None, alias="torchThreads", ge=1, le=256, strict=True)

    @model_validator(mode="after")
    def _workers_in_order(self) -> ModelConfig:
        if self.max_workers < self.min_workers:
            raise ValueError(f"maxWorkers ({self.max_workers}) must be at least minWorkers ({self.min_workers})")
        return self

    @classmethod
    def allowed_keys(cls) -> list[str]:
        return [field.alias or name for name, field in cls.model_fields.items()]


@dataclass(frozen=True)
class ModelFolder:
    """One model folder, validated.

    Attributes:
        name: The folder's name, the model's name everywhere.
        path: Absolute path of the folder.
        config: Its parsed `model-config.yaml`.
        examples: Its `examples/*.json`, sorted by file name.
    """

    name: str
    path: Path
    config: ModelConfig
    examples: tuple[Example, ...]

    @property
    def config_file(self) -> Path:
        return self.path / CONFIG_FILE


@dataclass(frozen=True)
class Catalog:
    """The model folders of one model-handlers/ directory and the shared runtime next to them."""

    root: Path

    @property
    def runtime_dir(self) -> Path:
        """The folder that holds the `aip_serving` package (put on sys.path, shipped in every archive)."""
        return self.root / RUNTIME_DIR_NAME

    @property
    def runtime_package(self) -> Path:
        return self.runtime_dir / RUNTIME_PACKAGE

    def names(self) -> tuple[str, ...]:
        """Sorted names of the model folders (every directory not starting with `_` or `.`)."""
        if not self.root.is_dir():
            return ()
        return tuple(sorted(p.name for p in self.root.iterdir()
                            if p.is_dir() and not p.name.startswith(("_", "."))))

    def load(self, name: str) -> ModelFolder:
        """Validate one model folder; every problem of it is reported in one ServingError."""
        path = self.root / name
        if not path.is_dir() or name.startswith(("_", ".")):
            raise ModelSelectionError(self._unknown(name))
        problems = [f"missing {f}" for f in REQUIRED_FILES if not (path / f).is_file()]
        if not MODEL_NAME.fullmatch(name):
            problems.append("the folder name must be a DNS label (lowercase letters, digits and '-', "
                            "at most 63 characters): it names the InferenceService")
        if not self.runtime_package.is_dir():
            problems.append(f"the shared runtime {self.runtime_package} does not exist")
        if problems:
            raise ServingError(bullet_list(f"model folder {path} is not complete:", problems))
        return ModelFolder(name=name, path=path.resolve(), config=load_model_config(path / CONFIG_FILE),
                           examples=load_examples(path / "examples"))

    def select(self, names: Iterable[str] | None = None) -> tuple[ModelFolder, ...]:
        """The named model folders (all of them when `names` is None), validated, in the order given."""
        available = self.names()
        wanted = list(dict.fromkeys(names)) if names is not None else list(available)
        unknown = [n for n in wanted if n not in available]
        if unknown:
            raise ModelSelectionError("; ".join(self._unknown(n) for n in unknown))
        if not wanted:
            raise ModelSelectionError(f"no model folders under {self.root}")
        return tuple(self.load(n) for n in wanted)

    def _unknown(self, name: str) -> str:
        available = self.names()
        listed = ", ".join(available) if available else "(none)"
        return f"unknown model {name!r}{did_you_mean(name, available)}; models under {self.root}: {listed}"


def parse_model_names(text: str | None) -> list[str] | None:
    """`a,b` from the command line into names; None (all models) when not given."""
    if text is None:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ModelSelectionError("--models names no model (expected a comma-separated list such as digits,ranker)")
    return names


def load_model_config(path: Path) -> ModelConfig:
    """Parse a `model-config.yaml`; every problem names the file, the key and what is allowed."""
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ServingError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ServingError(f"{path}: must be a mapping of TorchServe settings, got {type(data).__name__}")
    try:
        return ModelConfig.model_validate(data)
    except ValidationError as exc:
        problems = [_describe(error) for error in exc.errors()]
        count = len(problems)
        raise ServingError(bullet_list(f"{path}: {count} problem{'s' if count != 1 else ''}:", problems)) from None


def _describe(error: Any) -> str:
    allowed = ModelConfig.allowed_keys()
    key = ".".join(str(part) for part in error["loc"]) or "(file)"
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "extra_forbidden":
        return f"{key}: unknown key{did_you_mean(key, allowed)}; allowed keys: {', '.join(allowed)}"
    if kind == "missing":
        return f"{key}: required key is not set"
    if kind in {"int_type", "int_parsing", "int_from_float"}:
        return f"{key} = {error.get('input')!r}: must be a whole number"
    if kind == "greater_than_equal":
        return f"{key} = {error.get('input')!r}: must be at least {ctx['ge']}"
    if kind == "less_than_equal":
        return f"{key} = {error.get('input')!r}: must be at most {ctx['le']}"
    return f"{key}: {str(error['msg']).removeprefix('Value error, ')}"
