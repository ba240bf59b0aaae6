"""The settings benchmarks/serving.py found best are what `aip package` generates and what the cluster runs.

The speed itself is the benchmark's business (docs/serving-performance.md); these tests pin the
generated configuration: TorchServe's `config.properties` snapshot (workers, batching), the
`model-config.yaml` inside each archive (what the handler reads: torch threads, batch limits), raw
bodies handed to the handler for orjson, and the KServe predictor reading the same file.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
import yaml

from infra.serving.config_properties import parse_config_properties
from infra.serving.manifest import CONFIG_PROPERTIES, Manifest, mar_path

# (minWorkers, maxWorkers, batchSize, maxBatchDelay, torchThreads) per model, from the --variants runs:
# two workers per pod of 2 CPUs, batches gathered for at most 1 ms, one torch thread for small models.
TUNED = {
    "digits": (2, 2, 8, 1, 1),
    "ranker": (2, 2, 16, 1, 1),
}


@pytest.mark.parametrize("model", sorted(TUNED))
def test_config_properties_runs_the_tuned_workers_and_batching(packaged: tuple[Path, Manifest], model: str) -> None:
    _out, manifest = packaged
    properties = parse_config_properties(Path(manifest.models[model].files[CONFIG_PROPERTIES]).read_text())
    assert properties["decode_input_request"] == "false"  # bodies reach the handler as bytes, for orjson
    snapshot = json.loads(properties["model_snapshot"])["models"][model]
    (settings,) = snapshot.values()
    workers_min, workers_max, batch, delay, _threads = TUNED[model]
    assert (settings["minWorkers"], settings["maxWorkers"], settings["batchSize"], settings["maxBatchDelay"]) == (
        workers_min, workers_max, batch, delay)


@pytest.mark.parametrize("model", sorted(TUNED))
def test_the_archive_carries_the_threads_the_handler_applies(packaged: tuple[Path, Manifest], model: str) -> None:
    _out, manifest = packaged
    with zipfile.ZipFile(manifest.models[model].files[mar_path(model)]) as archive:
        inside = yaml.safe_load(archive.read("model-config.yaml"))
    workers_min, workers_max, batch, delay, threads = TUNED[model]
    assert inside["torchThreads"] == threads
    assert (inside["minWorkers"], inside["maxWorkers"], inside["batchSize"], inside["maxBatchDelay"]) == (
        workers_min, workers_max, batch, delay)


@pytest.mark.parametrize("model", sorted(TUNED))
def test_the_kserve_predictor_reads_the_same_settings(model: str) -> None:
    """The predictor image copies model-config.yaml next to predictor.py; the predictor batches and sets
    threads from it (aip_serving.kserve.folder_config, apply_torch_threads)."""
    folder = Path(__file__).resolve().parents[2] / "model-handlers" / model
    dockerfile = (folder / "Dockerfile").read_text()
    assert f"{model}/model-config.yaml" in dockerfile
    config = yaml.safe_load((folder / "model-config.yaml").read_text())
    assert (config["batchSize"], config["torchThreads"]) == (TUNED[model][2], TUNED[model][4])
