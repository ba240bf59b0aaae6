"""A model's TorchServe archive (.mar): staged inputs, torch-model-archiver, then a reproducible zip.

The archive holds the handler, the weights, `model-config.yaml`, the model folder's other serving
files (`model.py`, `core.py`, data files) and the shared `aip_serving` package, all at the archive's
root, which TorchServe puts on the worker's sys.path.

torch-model-archiver 0.12 is not byte-reproducible: MANIFEST.json carries `createdOn` (the current
time) and zip entries carry file times in directory-walk order. `normalize_archive` rewrites the zip
with sorted entries, a fixed time and a fixed `createdOn`, so the same inputs give the same bytes and
a re-packaged, unchanged model is not re-uploaded.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from infra.serving.catalog import CONFIG_FILE, RUNTIME_PACKAGE, Catalog, ModelFolder
from infra.serving.fingerprint import source_files
from infra.serving.problems import BuildFailed

HANDLER_FILE = "handler.py"
WEIGHTS_FILE = "weights.pt"
# Training, the KServe predictor and its image, requests and docs are not needed by a TorchServe worker;
# the handler and the config are passed to the archiver on their own. Glob patterns on top-level names.
NOT_IN_ARCHIVE = ("train.py", "predictor.py", HANDLER_FILE, CONFIG_FILE, "examples", "tests", "Dockerfile*",
                  "*.dockerignore", "requirements*.txt", "README*")
# The zip format's earliest date; also what MANIFEST.json's createdOn is pinned to.
FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
FIXED_CREATED_ON = "01/01/1980 00:00:00"
ARCHIVER_TIMEOUT_S = 300


@dataclass(frozen=True)
class StagedArchive:
    """The archiver's inputs, copied into one folder so exactly these files are archived."""

    root: Path

    @property
    def handler(self) -> Path:
        return self.root / HANDLER_FILE

    @property
    def weights(self) -> Path:
        return self.root / WEIGHTS_FILE

    @property
    def config(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def extra(self) -> Path:
        return self.root / "extra"

    def inputs(self) -> list[tuple[str, bytes]]:
        """(path inside the archive, bytes) of every staged file: what the archive's content is made of."""
        entries = [(p.name, p.read_bytes()) for p in (self.handler, self.weights, self.config)]
        entries += [(p.relative_to(self.extra).as_posix(), p.read_bytes()) for p in source_files(self.extra)]
        return entries


def stage_archive(folder: ModelFolder, catalog: Catalog, weights: Path, stage: Path) -> StagedArchive:
    """Copy the files that go into the archive to a fresh `stage` folder."""
    shutil.rmtree(stage, ignore_errors=True)
    staged = StagedArchive(stage)
    staged.extra.mkdir(parents=True)
    shutil.copyfile(folder.path / HANDLER_FILE, staged.handler)
    shutil.copyfile(folder.config_file, staged.config)
    shutil.copyfile(weights, staged.weights)
    for path in source_files(folder.path, exclude=NOT_IN_ARCHIVE):
        _copy(path, staged.extra / path.relative_to(folder.path))
    for path in source_files(catalog.runtime_package):
        _copy(path, staged.extra / RUNTIME_PACKAGE / path.relative_to(catalog.runtime_package))
    return staged


def build_archive(staged: StagedArchive, model: str, version: str, export_dir: Path, tmp: Path,
                  *, python: str = sys.executable) -> Path:
    """Run torch-model-archiver and make its output reproducible; returns `<export_dir>/<model>.mar`."""
    export_dir.mkdir(parents=True, exist_ok=True)
    tmp.mkdir(parents=True, exist_ok=True)
    command = [python, "-m", "model_archiver.model_packaging",
               "--model-name", model, "--version", version,
               "--handler", str(staged.handler), "--serialized-file", str(staged.weights),
               # A folder given as an extra file is copied by content: model.py, core.py, aip_serving/...
               "--extra-files", str(staged.extra), "--config-file", str(staged.config),
               "--export-path", str(export_dir), "--force"]
    # The archiver assembles the archive in $TMPDIR/<model>: a private TMPDIR keeps parallel builds apart.
    env = {**os.environ, "TMPDIR": str(tmp), "PYTHONDONTWRITEBYTECODE": "1"}
    try:
        run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=ARCHIVER_TIMEOUT_S,
                             check=False)
    except subprocess.TimeoutExpired:
        raise BuildFailed(f"torch-model-archiver took longer than {ARCHIVER_TIMEOUT_S} s for {model}") from None
    mar = export_dir / f"{model}.mar"
    if run.returncode != 0 or not mar.is_file():
        raise BuildFailed(f"torch-model-archiver failed for {model} (exit {run.returncode}):\n"
                           + (run.stdout + run.stderr).strip()[-2000:])
    normalize_archive(mar)
    return mar


def normalize_archive(mar: Path) -> None:
    """Rewrite a .mar with sorted entries, fixed times and modes, and a fixed MANIFEST.json createdOn."""
    with zipfile.ZipFile(mar) as source:
        entries = {info.filename: source.read(info) for info in source.infolist() if not info.is_dir()}
    manifest_name = "MAR-INF/MANIFEST.json"
    if manifest_name in entries:
        manifest = json.loads(entries[manifest_name])
        manifest["createdOn"] = FIXED_CREATED_ON
        entries[manifest_name] = json.dumps(manifest, indent=2, sort_keys=True).encode()
    partial = mar.with_name(f".{mar.name}.partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as target:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=FIXED_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, so the mode below means what it says
            info.external_attr = 0o644 << 16
            target.writestr(info, entries[name])
    partial.replace(mar)


def archive_manifest(mar: Path) -> dict[str, object]:
    """MANIFEST.json of an archive (what TorchServe reads for model name, version and handler)."""
    with zipfile.ZipFile(mar) as archive:
        return json.loads(archive.read("MAR-INF/MANIFEST.json"))


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
