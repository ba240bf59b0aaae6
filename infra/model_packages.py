"""The packaged models `aip package` leaves behind, read by the team program (which never needs torch)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from infra.model_folders import MODEL_HANDLERS

DEFAULT_MANIFEST = MODEL_HANDLERS.parent / "build" / "models" / "manifest.json"
MANIFEST_ENV = "AIP_MODEL_PACKAGES"


@dataclass(frozen=True)
class PackagedModel:
    """One model in KServe's TorchServe layout, at a content-addressed version.

    Attributes:
        name: Model name (its folder under model-handlers/).
        version: Hash of everything that determines the artifacts; unchanged model, unchanged version.
        files: Path inside the layout (``config/config.properties``, ``model-store/<name>.mar``) to the file.
        sha256: Same keys, the sha256 of each file's bytes.
    """

    name: str
    version: str
    files: dict[str, Path]
    sha256: dict[str, str]


class PackagesMissing(Exception):
    """The manifest or a model in it is missing: `aip package` has not run for it."""


def manifest_path() -> Path:
    return Path(os.environ.get(MANIFEST_ENV) or DEFAULT_MANIFEST)


def load_packages(path: Path | None = None) -> dict[str, PackagedModel]:
    """Read the manifest; raise PackagesMissing when it or a file it names does not exist."""
    path = path or manifest_path()
    if not path.is_file():
        raise PackagesMissing(f"{path} does not exist: run `aip package` first")
    data = json.loads(path.read_text())
    packages = {}
    for name, entry in data.get("models", {}).items():
        files = {rel: Path(p) for rel, p in entry["files"].items()}
        missing = [str(p) for p in files.values() if not p.is_file()]
        if missing:
            raise PackagesMissing(f"packaged files of {name} are missing ({', '.join(missing)}): run `aip package`")
        packages[name] = PackagedModel(name=name, version=entry["version"], files=files,
                                       sha256=dict(entry.get("sha256", {})))
    return packages
