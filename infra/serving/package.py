"""`aip package`: train (cached), archive and lay out models for KServe's TorchServe runtime.

Output, for each model, exactly what the InferenceService's storageUri must contain:

    <out>/<model>/config/config.properties
    <out>/<model>/model-store/<model>.mar
    <out>/manifest.json                      (infra.serving.manifest)

Scratch space (training cache, staging, logs) lives in hidden folders of `<out>`.

The version is content-addressed: a sha256 over every file that goes into the archive (the handler,
the other files of the model folder, the shared runtime, `model-config.yaml`, the weights' bytes),
the config.properties rendered for the model, and the archive format. The archive itself is made
reproducible (infra.serving.archive), so equal versions also mean equal bytes.
"""

from __future__ import annotations

import fcntl
import shutil
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from infra.serving.archive import build_archive, stage_archive
from infra.serving.catalog import MODEL_HANDLERS, Catalog, ModelFolder
from infra.serving.config_properties import SnapshotModel, cluster_settings, render_config_properties
from infra.serving.fingerprint import digest_inputs, sha256_file
from infra.serving.manifest import (
    CONFIG_PROPERTIES,
    DEFAULT_OUT,
    MANIFEST_FILE,
    Manifest,
    PackagedModel,
    load_manifest,
    mar_path,
    write_manifest,
)
from infra.serving.problems import ServingError
from infra.serving.training import installed_version, train_cached

VERSION_LENGTH = 16
# Bump when the layout or the way archives are built changes, so every version changes with it.
PACKAGE_FORMAT = b"aip-package/1"
# Stands in for the version while hashing: config.properties names the version it loads.
VERSION_PLACEHOLDER = "0" * VERSION_LENGTH

Progress = Callable[[str, str], None]


def package_models(out: Path = DEFAULT_OUT, names: Sequence[str] | None = None, *, catalog: Catalog | None = None,
                   python: str = sys.executable, on_progress: Progress | None = None) -> Manifest:
    """Package the named models (all when None) into `out` and return the manifest written there.

    Models packaged earlier into the same `out` and not named now stay in the manifest while their
    files exist, so packaging one model does not drop the others from a deploy.

    Raises:
        ServingError: An unknown model name, an invalid model folder, or training/archiving failed.
    """
    catalog = catalog or Catalog(MODEL_HANDLERS)
    out = out.resolve()
    progress = on_progress or (lambda model, step: None)
    folders = catalog.select(names)
    out.mkdir(parents=True, exist_ok=True)
    with _locked(out / ".lock"):
        previous = _previous_manifest(out)
        packaged = {f.name: _package_one(f, catalog, out, previous.get(f.name), python, progress) for f in folders}
        kept = {name: entry for name, entry in previous.items() if name not in packaged and not entry.missing_files()}
        manifest = Manifest(models=dict(sorted({**kept, **packaged}.items())))
        write_manifest(out / MANIFEST_FILE, manifest)
    return manifest


def model_version(folder: ModelFolder, archive_inputs: list[tuple[str, bytes]]) -> str:
    """The content-addressed version of a model's artifacts (see the module docstring)."""
    config = render_config_properties([SnapshotModel(folder.name, VERSION_PLACEHOLDER, folder.config)],
                                      cluster_settings())
    inputs = [*(("archive/" + name, data) for name, data in archive_inputs),
              (CONFIG_PROPERTIES, config.encode()), ("format", PACKAGE_FORMAT),
              ("torch-model-archiver", installed_version("torch-model-archiver").encode())]
    return digest_inputs(inputs)[:VERSION_LENGTH]


def _package_one(folder: ModelFolder, catalog: Catalog, out: Path, previous: PackagedModel | None, python: str,
                 progress: Progress) -> PackagedModel:
    trained = train_cached(folder, catalog, out / ".cache" / "weights", python=python,
                           log_file=out / ".logs" / f"{folder.name}-train.log",
                           on_training=lambda: progress(folder.name, "training"))
    progress(folder.name, "weights of the same inputs reused" if trained.cached else "trained")
    stage = out / ".stage" / folder.name
    staged = stage_archive(folder, catalog, trained.weights, stage / "inputs")
    version = model_version(folder, staged.inputs())

    model_dir = out / folder.name
    files = {CONFIG_PROPERTIES: model_dir / CONFIG_PROPERTIES, mar_path(folder.name): model_dir / mar_path(folder.name)}
    config_text = render_config_properties([SnapshotModel(folder.name, version, folder.config)], cluster_settings())
    _remove_strays(model_dir, keep=set(files.values()))
    if _unchanged(previous, version, files):
        progress(folder.name, f"archive {version} unchanged")
    else:
        progress(folder.name, "archiving")
        build_archive(staged, folder.name, version, files[mar_path(folder.name)].parent, stage / "tmp", python=python)
        progress(folder.name, f"archived {version}")
    files[CONFIG_PROPERTIES].parent.mkdir(parents=True, exist_ok=True)
    files[CONFIG_PROPERTIES].write_text(config_text, encoding="utf-8")
    shutil.rmtree(stage, ignore_errors=True)
    _remove_if_empty(stage.parent)
    return PackagedModel(version=version, files=files, sha256={rel: sha256_file(p) for rel, p in files.items()},
                         metrics=trained.metrics)


def _unchanged(previous: PackagedModel | None, version: str, files: dict[str, Path]) -> bool:
    """The archive on disk is the one an earlier run built for this very version."""
    if previous is None or previous.version != version or previous.files != files:
        return False
    return all(p.is_file() and sha256_file(p) == previous.sha256.get(rel) for rel, p in files.items())


def _remove_strays(model_dir: Path, keep: set[Path]) -> None:
    """The model's folder holds exactly KServe's layout: nothing an older run or a person left there."""
    if not model_dir.is_dir():
        return
    for path in sorted(model_dir.rglob("*"), reverse=True):
        if path.is_file() and path not in keep:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()


def _remove_if_empty(folder: Path) -> None:
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()


def _previous_manifest(out: Path) -> dict[str, PackagedModel]:
    path = out / MANIFEST_FILE
    if not path.is_file():
        return {}
    try:
        return dict(load_manifest(path).models)
    except ServingError:  # an unreadable old manifest only means that nothing can be reused
        return {}


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One `aip package` per output folder at a time (a second one waits)."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
