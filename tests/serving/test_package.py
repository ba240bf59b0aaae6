"""`aip package`: KServe's layout, the manifest, content-addressed versions, reproducible archives."""

from __future__ import annotations

import json
import re
import shutil
import zipfile
from pathlib import Path

import pytest

from infra.serving.archive import archive_manifest
from infra.serving.catalog import Catalog
from infra.serving.config_properties import parse_config_properties
from infra.serving.fingerprint import sha256_file
from infra.serving.manifest import CONFIG_PROPERTIES, MANIFEST_FILE, Manifest, load_manifest, mar_path
from infra.serving.package import package_models
from infra.serving.problems import ServingError

pytestmark = pytest.mark.integration  # trains models and runs torch-model-archiver


def test_layout_is_exactly_what_the_kserve_torchserve_runtime_reads(packaged: tuple[Path, Manifest], catalog):
    out, manifest = packaged
    assert sorted(manifest.models) == sorted(catalog.names())
    for name in manifest.models:
        files = sorted(p.relative_to(out / name).as_posix() for p in (out / name).rglob("*") if p.is_file())
        assert files == [CONFIG_PROPERTIES, mar_path(name)]
    visible = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    assert visible == sorted([*manifest.models, MANIFEST_FILE])


def test_manifest_names_version_files_hashes_runtime_and_metrics(packaged: tuple[Path, Manifest]):
    out, manifest = packaged
    raw = json.loads((out / MANIFEST_FILE).read_text())
    assert load_manifest(out / MANIFEST_FILE) == manifest
    for name, entry in raw["models"].items():
        assert set(entry) == {"version", "files", "sha256", "runtime", "metrics"}
        assert re.fullmatch(r"[0-9a-f]{16}", entry["version"])
        assert entry["runtime"] == "torchserve"
        assert set(entry["files"]) == set(entry["sha256"]) == {CONFIG_PROPERTIES, mar_path(name)}
        for relative, path in entry["files"].items():
            assert Path(path).is_absolute() and Path(path) == out / name / relative
            assert sha256_file(Path(path)) == entry["sha256"][relative]
    assert manifest.models["digits"].metrics["test_accuracy"] > 0.9


def test_archive_and_config_name_the_same_version(packaged: tuple[Path, Manifest]):
    _, manifest = packaged
    for name, entry in manifest.models.items():
        mar = entry.files[mar_path(name)]
        header = archive_manifest(mar)
        assert header["model"]["modelName"] == name and header["model"]["modelVersion"] == entry.version
        assert header["model"]["handler"] == "handler.py" and header["model"]["serializedFile"] == "weights.pt"
        with zipfile.ZipFile(mar) as archive:
            names = set(archive.namelist())
        assert {"handler.py", "weights.pt", "model-config.yaml", "model.py", "core.py",
                "aip_serving/__init__.py", "aip_serving/torchserve.py"} <= names
        assert not names & {"train.py", "predictor.py"} and not any(n.startswith("examples/") for n in names)
        snapshot = json.loads(parse_config_properties(entry.files[CONFIG_PROPERTIES].read_text())["model_snapshot"])
        assert snapshot["models"] == {name: {entry.version: snapshot["models"][name][entry.version]}}
        assert snapshot["models"][name][entry.version]["marName"] == f"{name}.mar"


def test_repackaging_an_unchanged_model_reuses_weights_and_archive(packaged: tuple[Path, Manifest]):
    out, manifest = packaged
    steps: list[str] = []
    again = package_models(out, on_progress=lambda model, step: steps.append(f"{model}: {step}"))
    assert again == manifest
    assert not any(step.endswith(("training", "archiving")) for step in steps), steps


def test_packaging_one_model_keeps_the_others_in_the_manifest(packaged: tuple[Path, Manifest]):
    out, manifest = packaged
    assert package_models(out, ["digits"]).models.keys() == manifest.models.keys()


def test_archive_is_byte_reproducible(packaged: tuple[Path, Manifest], tmp_path: Path):
    out, manifest = packaged
    second = tmp_path / "models"
    shutil.copytree(out / ".cache", second / ".cache")  # same weights; the archiver runs again
    rebuilt = package_models(second, ["ranker"])
    assert rebuilt.models["ranker"].version == manifest.models["ranker"].version
    assert rebuilt.models["ranker"].sha256 == manifest.models["ranker"].sha256


@pytest.fixture
def scratch_catalog(tmp_path: Path, catalog: Catalog, packaged: tuple[Path, Manifest]) -> tuple[Catalog, Path]:
    """A copy of the runtime and the ranker folder, with the session's trained weights already cached."""
    root = tmp_path / "model-handlers"
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(catalog.runtime_dir, root / "_runtime", ignore=ignore)
    shutil.copytree(catalog.root / "ranker", root / "ranker", ignore=ignore)
    out = tmp_path / "models"
    shutil.copytree(packaged[0] / ".cache" / "weights" / "ranker", out / ".cache" / "weights" / "ranker")
    return Catalog(root), out


def version_after(scratch: tuple[Catalog, Path], steps: list[str] | None = None) -> str:
    catalog, out = scratch
    manifest = package_models(out, ["ranker"], catalog=catalog,
                              on_progress=lambda model, step: steps.append(step) if steps is not None else None)
    return manifest.models["ranker"].version


def test_version_depends_on_content_not_location(scratch_catalog, packaged: tuple[Path, Manifest]):
    assert version_after(scratch_catalog) == packaged[1].models["ranker"].version


@pytest.mark.parametrize(("relative", "edit", "changes"), [
    ("ranker/handler.py", lambda text: text + "\n# changed\n", True),
    ("ranker/model-config.yaml", lambda text: text.replace("maxBatchDelay: 1", "maxBatchDelay: 6"), True),
    ("_runtime/aip_serving/errors.py", lambda text: text + "\n# changed\n", True),
    ("ranker/examples/single-user.json", lambda text: text.replace("7", "8"), False),
], ids=["handler", "model-config", "runtime", "example"])
def test_version_changes_with_every_artifact_input(scratch_catalog, relative: str, edit, changes: bool):
    before = version_after(scratch_catalog)
    path = scratch_catalog[0].root / relative
    path.write_text(edit(path.read_text()))
    steps: list[str] = []
    after = version_after(scratch_catalog, steps)
    assert (after != before) is changes
    if relative.startswith("ranker/"):  # serving files only: the weights are reused, not retrained
        assert "training" not in steps


def test_missing_or_malformed_manifest_is_a_clear_error(tmp_path: Path):
    with pytest.raises(ServingError, match="run `aip package` first"):
        load_manifest(tmp_path / MANIFEST_FILE)
    (tmp_path / MANIFEST_FILE).write_text('{"models": {"digits": {"version": "xyz"}}}')
    with pytest.raises(ServingError, match=r"is not a package manifest: models\.digits\.version"):
        load_manifest(tmp_path / MANIFEST_FILE)
