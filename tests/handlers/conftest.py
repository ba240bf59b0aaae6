"""Fixtures for the model handlers: model folders imported as TorchServe sees them, trained weights, contexts.

Inside an archive or a predictor image a model's files are top-level modules (``core``, ``model``...)
next to the ``aip_serving`` package. Tests reproduce that layout: ``model-handlers/_runtime`` goes on
``sys.path`` for the session, and each model folder is imported on its own with its module names
removed from ``sys.modules`` again afterwards, because both folders have a ``core`` and a ``model``.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

MODEL_HANDLERS = Path(__file__).resolve().parents[2] / "model-handlers"
RUNTIME = MODEL_HANDLERS / "_runtime"
MODEL_NAMES = ("digits", "ranker")
FOLDER_MODULES = ("model", "dataset", "core", "train", "handler", "predictor")


@dataclass(frozen=True)
class ModelFolder:
    """A model folder's modules, imported as top-level modules the way the runtimes import them."""

    name: str
    path: Path
    modules: dict[str, ModuleType]

    def __getattr__(self, module: str) -> ModuleType:
        try:
            return self.modules[module]
        except KeyError:
            raise AttributeError(module) from None

    def examples(self) -> list[Path]:
        return sorted((self.path / "examples").glob("*.json"))


def import_model_folder(path: Path) -> ModelFolder:
    """Import every module of a model folder, leaving ``sys.modules`` and ``sys.path`` as they were."""
    saved = {name: sys.modules.pop(name) for name in FOLDER_MODULES if name in sys.modules}
    sys.path.insert(0, str(path))
    try:
        modules = {name: importlib.import_module(name) for name in FOLDER_MODULES if (path / f"{name}.py").is_file()}
    finally:
        sys.path.remove(str(path))
        for name in FOLDER_MODULES:
            sys.modules.pop(name, None)
        sys.modules.update(saved)
    return ModelFolder(name=path.name, path=path, modules=modules)


@pytest.fixture(scope="session", autouse=True)
def runtime_on_path() -> Iterator[None]:
    sys.path.insert(0, str(RUNTIME))
    yield
    sys.path.remove(str(RUNTIME))


@pytest.fixture(scope="session")
def digits(runtime_on_path: None) -> ModelFolder:
    return import_model_folder(MODEL_HANDLERS / "digits")


@pytest.fixture(scope="session")
def ranker(runtime_on_path: None) -> ModelFolder:
    return import_model_folder(MODEL_HANDLERS / "ranker")


@dataclass(frozen=True)
class Trained:
    """A model trained once for the session: where its weights are and what training reported."""

    folder: ModelFolder
    model_dir: Path
    metrics: dict[str, Any]


@pytest.fixture(scope="session")
def digits_trained(digits: ModelFolder, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    out = tmp_path_factory.mktemp("digits-weights")
    return Trained(digits, out, digits.train.train(out))


@pytest.fixture(scope="session")
def ranker_trained(ranker: ModelFolder, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    out = tmp_path_factory.mktemp("ranker-weights")
    return Trained(ranker, out, ranker.train.train(out))


@pytest.fixture(scope="session")
def trained(digits_trained: Trained, ranker_trained: Trained) -> dict[str, Trained]:
    return {"digits": digits_trained, "ranker": ranker_trained}


@pytest.fixture(scope="session")
def digits_core(digits_trained: Trained) -> Any:
    return digits_trained.folder.core.DigitsCore.load(digits_trained.model_dir)


@pytest.fixture(scope="session")
def ranker_core(ranker_trained: Trained) -> Any:
    return ranker_trained.folder.core.RankerCore.load(ranker_trained.model_dir)


@dataclass
class MockContext:
    """What TorchServe 0.12's ``ts.context.Context`` offers a handler, recording what the handler sets.

    Attributes:
        statuses: ``idx -> (code, phrase)`` from ``set_response_status``.
        content_types: ``idx -> content type`` from ``set_response_content_type``.
    """

    model_dir: Path
    model_name: str
    model_yaml_config: dict[str, Any] = field(default_factory=dict)
    gpu_id: int | None = None
    version: str = "1.0"
    request_ids: dict[int, str] = field(default_factory=dict)
    statuses: dict[int, tuple[int, str]] = field(default_factory=dict)
    content_types: dict[int, str] = field(default_factory=dict)

    @property
    def system_properties(self) -> dict[str, Any]:
        return {"model_dir": str(self.model_dir), "gpu_id": self.gpu_id, "batch_size": 8, "server_name": "MMS"}

    @property
    def manifest(self) -> dict[str, Any]:
        return {"model": {"modelName": self.model_name, "modelVersion": self.version,
                          "serializedFile": "weights.pt", "handler": "handler.py"}}

    def get_request_id(self, idx: int = 0) -> str | None:
        return self.request_ids.get(idx)

    def get_request_header(self, idx: int, key: str) -> str | None:
        return None

    def set_response_status(self, code: int = 200, phrase: str = "", idx: int = 0) -> None:
        self.statuses[idx] = (code, phrase)

    def set_response_content_type(self, idx: int, value: str) -> None:
        self.content_types[idx] = value

    def status(self, idx: int) -> int:
        return self.statuses.get(idx, (200, ""))[0]


def read_example(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))
