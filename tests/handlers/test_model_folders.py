"""Every model folder follows the contract of model-handlers/README.md; importing code runs nothing."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import yaml

from tests.handlers.conftest import MODEL_HANDLERS, MODEL_NAMES, RUNTIME

REQUIRED_FILES = ("model.py", "train.py", "core.py", "handler.py", "predictor.py", "model-config.yaml", "Dockerfile")
TORCHSERVE_KEYS = ("minWorkers", "maxWorkers", "batchSize", "maxBatchDelay", "responseTimeout")


def test_the_tests_cover_every_model_folder() -> None:
    folders = {path.name for path in MODEL_HANDLERS.iterdir()
               if path.is_dir() and not path.name.startswith(("_", ".")) and (path / "model-config.yaml").is_file()}
    assert folders == set(MODEL_NAMES)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_folder_has_every_file(name: str) -> None:
    folder = MODEL_HANDLERS / name
    assert [file for file in REQUIRED_FILES if not (folder / file).is_file()] == []
    assert list((folder / "examples").glob("*.json"))


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_model_config_is_complete(name: str, runtime_on_path: None) -> None:
    from aip_serving.model_config import max_batch_instances

    config = yaml.safe_load((MODEL_HANDLERS / name / "model-config.yaml").read_text())
    for key in TORCHSERVE_KEYS:
        assert type(config[key]) is int and config[key] > 0, key
    assert config["minWorkers"] <= config["maxWorkers"]
    assert max_batch_instances(config) == config["maxBatchInstances"]


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_dockerfile_runs_as_non_root_with_pinned_versions(name: str) -> None:
    dockerfile = (MODEL_HANDLERS / name / "Dockerfile").read_text()
    stages = [line.split() for line in dockerfile.splitlines() if line.startswith("FROM ")]
    named = {words[3] for words in stages if len(words) == 4 and words[2].upper() == "AS"}
    images = [words[1] for words in stages if words[1] not in named]
    assert images and all(":" in image and not image.endswith(":latest") for image in images)
    assert "torch==2.13.0" in dockerfile and "kserve==0.16.0" in dockerfile
    assert "\nUSER 10001\n" in dockerfile  # the runtime stage runs as a non-root user


def test_importing_the_code_runs_nothing() -> None:
    """No handlers, no output, no torch for the bare package: the runtimes import these modules freely."""
    script = textwrap.dedent(
        f"""
        import logging, sys
        sys.path[:0] = [{str(RUNTIME)!r}, {str(MODEL_HANDLERS / "digits")!r}]
        import aip_serving
        assert "torch" not in sys.modules, "import aip_serving pulled in torch"
        import aip_serving.core, aip_serving.logs, aip_serving.training, aip_serving.torchserve, aip_serving.kserve
        import core, handler, model, predictor, train
        assert not logging.getLogger("aip_serving.requests").handlers
        print("clean")
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "clean\n"
