"""`aip serve` when the server itself fails: exit 1, its log lines in the message, its work dir kept."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
from rich.console import Console

from infra.serving.catalog import Catalog
from infra.serving.local import ServeOptions, serve
from infra.serving.manifest import Manifest
from tests.serving.conftest import processes_mentioning

pytestmark = pytest.mark.integration


def test_a_predictor_that_cannot_start_fails_with_its_log_and_keeps_the_work_dir(
        tmp_path: Path, catalog: Catalog, packaged: tuple[Path, Manifest]):
    root = tmp_path / "model-handlers"
    shutil.copytree(catalog.runtime_dir, root / "_runtime")
    shutil.copytree(catalog.root / "ranker", root / "ranker")
    predictor = root / "ranker" / "predictor.py"
    predictor.write_text(predictor.read_text() + '\nraise RuntimeError("[boom] broken on purpose")\n')
    out = tmp_path / "models"
    shutil.copytree(packaged[0] / ".cache", out / ".cache")  # no training: the weights are cached
    err = io.StringIO()
    code = serve(ServeOptions(runtime="kserve", out=out), Console(file=io.StringIO()),
                 Console(file=err, width=200), catalog=Catalog(root))
    assert code == 1
    message = err.getvalue()
    assert "error: kserve failed: the server exited while waiting for KServe and its models" in message
    assert "[boom] broken on purpose" in message
    kept = [p for p in (out / ".serve").iterdir() if p.name.startswith("kserve-")]
    assert len(kept) == 1 and f"logs kept in {kept[0]}" in message
    assert (kept[0] / "logs" / "stdout.log").is_file()
    assert not processes_mentioning(str(kept[0]))
