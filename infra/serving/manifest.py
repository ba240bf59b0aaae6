"""`<out>/manifest.json`, what `aip package` leaves for the Pulumi program (which must not need torch).

```json
{"models": {"digits": {
    "version": "3f2a9c0d1e4b5a67",
    "files": {"config/config.properties": "/abs/build/models/digits/config/config.properties",
              "model-store/digits.mar": "/abs/build/models/digits/model-store/digits.mar"},
    "sha256": {"config/config.properties": "…", "model-store/digits.mar": "…"},
    "runtime": "torchserve",
    "metrics": {"accuracy": 0.97}}}}
```

Upload each file to `teams/<team>/models/<model>/<version>/<relative path>`; that folder is the
InferenceService's storageUri (KServe's TorchServe layout). Same version, same bytes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from infra.serving.problems import ServingError

MANIFEST_FILE = "manifest.json"
CONFIG_PROPERTIES = "config/config.properties"
DEFAULT_OUT = Path(__file__).resolve().parents[2] / "build" / "models"
# Where a deploy (team stack) finds the manifest when packages were built elsewhere, e.g. in CI.
MANIFEST_ENV = "AIP_MODEL_PACKAGES"


def manifest_path() -> Path:
    """The manifest a team stack deploys from: $AIP_MODEL_PACKAGES, else build/models/manifest.json."""
    return Path(os.environ.get(MANIFEST_ENV) or DEFAULT_OUT / MANIFEST_FILE)


def mar_path(model: str) -> str:
    return f"model-store/{model}.mar"


class PackagedModel(BaseModel):
    """One model in KServe's TorchServe layout.

    Attributes:
        version: Content-addressed version (hex): unchanged inputs, unchanged version.
        files: Relative path in the layout to the absolute path of the file.
        sha256: Relative path to the sha256 of the file's bytes.
        runtime: The serving runtime the layout is for.
        metrics: What training reported (accuracy, loss…).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str = Field(pattern=r"^[0-9a-f]{12,64}$")
    files: dict[str, Path]
    sha256: dict[str, str]
    runtime: Literal["torchserve"] = "torchserve"
    metrics: dict[str, float | int | str | bool | None] = {}

    def missing_files(self) -> list[Path]:
        return [p for p in self.files.values() if not p.is_file()]


class Manifest(BaseModel):
    """Every packaged model, by name."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    models: dict[str, PackagedModel]

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"


def load_manifest(path: Path) -> Manifest:
    """Read a manifest; ServingError (no traceback needed) when it is missing or malformed."""
    if not path.is_file():
        raise ServingError(f"{path} does not exist: run `aip package` first")
    try:
        return Manifest.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        details = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ServingError(f"{path} is not a package manifest: {details}") from None


def write_manifest(path: Path, manifest: Manifest) -> None:
    """Write atomically: a reader never sees half a manifest."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_text(manifest.to_json(), encoding="utf-8")
    partial.replace(path)
