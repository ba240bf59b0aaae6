"""Model folders and their model-config.yaml: the shipped ones parse, bad ones are refused with clear messages."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from infra.serving.catalog import MODEL_HANDLERS, Catalog, ModelConfig, load_model_config, parse_model_names
from infra.serving.problems import ModelSelectionError, ServingError


def test_every_shipped_model_folder_is_complete():
    catalog = Catalog(MODEL_HANDLERS)
    names = catalog.names()
    assert names and "_runtime" not in names
    for folder in catalog.select():
        assert folder.config.min_workers <= folder.config.max_workers
        assert folder.examples, f"{folder.name} has no examples"


def test_model_config_is_frozen_and_typed(catalog: Catalog):
    config = catalog.load(catalog.names()[0]).config
    assert isinstance(config, ModelConfig)
    with pytest.raises(ValueError, match="frozen"):
        config.batch_size = 3  # type: ignore[misc]


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "model-config.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("text", "fragments"), [
    ("maxBatchInstances: 8\nbatchsize: 4\n",
     ["1 problem:", "batchsize: unknown key (did you mean batchSize?); allowed keys: minWorkers, maxWorkers, "
      "batchSize, maxBatchDelay, responseTimeout, maxBatchInstances"]),
    ("minWorkers: 2\n", ["maxBatchInstances: required key is not set"]),
    ("maxBatchInstances: 8\nbatchSize: many\n", ["batchSize = 'many': must be a whole number"]),
    ("maxBatchInstances: 0\nmaxBatchDelay: -1\n",
     ["2 problems:", "maxBatchInstances = 0: must be at least 1", "maxBatchDelay = -1: must be at least 0"]),
    ("maxBatchInstances: 8\nminWorkers: 3\nmaxWorkers: 2\n", ["maxWorkers (2) must be at least minWorkers (3)"]),
    ("maxBatchInstances: 8\ntorchThreads: 0\n", ["torchThreads = 0: must be at least 1"]),
    ("maxBatchInstances: 8\ntorchThreads: 257\n", ["torchThreads = 257: must be at most 256"]),
    # Strict, as the handler is (aip_serving.model_config.torch_threads): no "2", 2.0 or true turned into 2.
    ("maxBatchInstances: 8\ntorchThreads: '2'\n", ["torchThreads = '2': must be a whole number"]),
    ("maxBatchInstances: 8\ntorchThreads: 2.0\n", ["torchThreads = 2.0: must be a whole number"]),
    ("maxBatchInstances: 8\ntorchThreads: true\n", ["torchThreads = True: must be a whole number"]),
    ("maxBatchInstances: 8\ntorchthreads: 2\n", ["torchthreads: unknown key (did you mean torchThreads?)"]),
    ("- 1\n- 2\n", ["must be a mapping of TorchServe settings, got list"]),
    ("a: [unclosed\n", ["not valid YAML"]),
])
def test_bad_model_config_names_file_key_and_what_is_allowed(tmp_path: Path, text: str, fragments: list[str]):
    path = write_config(tmp_path, text)
    with pytest.raises(ServingError) as caught:
        load_model_config(path)
    message = str(caught.value)
    assert message.startswith(str(path))
    for fragment in fragments:
        assert fragment in message


def test_defaults_are_torchserves_own(tmp_path: Path):
    config = load_model_config(write_config(tmp_path, "maxBatchInstances: 4\n"))
    assert (config.min_workers, config.max_workers, config.batch_size, config.max_batch_delay,
            config.response_timeout) == (1, 1, 1, 100, 120)
    assert config.torch_threads is None  # torch's own default


@pytest.mark.parametrize(("text", "threads"), [("torchThreads: 2\n", 2), ("torchThreads: 256\n", 256),
                                               ("torchThreads: null\n", None), ("", None)])
def test_torch_threads_is_optional(tmp_path: Path, text: str, threads: int | None):
    assert load_model_config(write_config(tmp_path, "maxBatchInstances: 4\n" + text)).torch_threads == threads


@pytest.mark.parametrize(("values", "expected"), [([None, None], None), ([1, None, 4, 2], 4), ([3], 3), ([], None)])
def test_one_kserve_process_hosting_several_models_takes_their_largest_torch_threads(
    values: list[int | None], expected: int | None
):
    from infra.serving.kserve_host import process_torch_threads

    assert process_torch_threads([{"name": f"m{i}", "torch_threads": v} for i, v in enumerate(values)]) == expected
    assert process_torch_threads([{"name": "older-spec"}]) is None


def test_unknown_model_lists_the_models(catalog: Catalog):
    with pytest.raises(ModelSelectionError) as caught:
        catalog.select(["digitz", "nope"])
    message = str(caught.value)
    assert "unknown model 'digitz' (did you mean digits?)" in message
    assert "unknown model 'nope'" in message
    assert "digits, ranker" in message


def test_runtime_folder_is_not_a_model(catalog: Catalog):
    with pytest.raises(ModelSelectionError, match="unknown model '_runtime'"):
        catalog.select(["_runtime"])


def test_incomplete_folder_and_bad_name_are_reported_together(tmp_path: Path, catalog: Catalog):
    root = tmp_path / "model-handlers"
    shutil.copytree(catalog.runtime_dir, root / "_runtime")
    (root / "My_Model").mkdir(parents=True)
    (root / "My_Model" / "model.py").write_text("")
    with pytest.raises(ServingError) as caught:
        Catalog(root).select(["My_Model"])
    message = str(caught.value)
    for fragment in ("is not complete", "missing train.py", "missing model-config.yaml", "must be a DNS label"):
        assert fragment in message


def test_invalid_example_file_is_refused(tmp_path: Path, catalog: Catalog):
    root = tmp_path / "model-handlers"
    shutil.copytree(catalog.runtime_dir, root / "_runtime")
    shutil.copytree(catalog.root / "digits", root / "digits", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "digits" / "examples" / "broken.json").write_text('{"request": {}, "expect": {"status": 200, "x": 1}}')
    with pytest.raises(ServingError, match=r"broken.json: expect.x: Extra inputs are not permitted"):
        Catalog(root).load("digits")


@pytest.mark.parametrize(("text", "expected"), [
    (None, None), ("digits", ["digits"]), ("digits, ranker", ["digits", "ranker"]), ("ranker,", ["ranker"]),
])
def test_model_names_from_the_command_line(text: str | None, expected: list[str] | None):
    assert parse_model_names(text) == expected


def test_empty_model_list_is_a_usage_error():
    with pytest.raises(ModelSelectionError, match="names no model"):
        parse_model_names(" , ")
