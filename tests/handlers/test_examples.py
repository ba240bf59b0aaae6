"""Every example request of every model folder gets the answer its file expects, from the core."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.handlers.conftest import MODEL_HANDLERS, MODEL_NAMES, Trained, read_example

EXAMPLES = [path for name in MODEL_NAMES for path in sorted((MODEL_HANDLERS / name / "examples").glob("*.json"))]


def core_of(trained: Trained) -> Any:
    cores = {"digits": "DigitsCore", "ranker": "RankerCore"}
    return getattr(trained.folder.core, cores[trained.folder.name]).load(trained.model_dir)


@pytest.fixture(scope="module")
def cores(trained: dict[str, Trained]) -> dict[str, Any]:
    return {name: core_of(model) for name, model in trained.items()}


def test_every_model_has_valid_and_invalid_examples() -> None:
    for name in MODEL_NAMES:
        statuses = [read_example(path)["expect"]["status"] for path in EXAMPLES if path.parent.parent.name == name]
        assert statuses.count(200) >= 2, name
        assert sum(status == 400 for status in statuses) >= 4, name


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: f"{p.parent.parent.name}/{p.stem}")
def test_example(path: Path, cores: dict[str, Any]) -> None:
    from aip_serving.errors import InputError

    example = read_example(path)
    assert set(example) == {"request", "expect"}
    expect = example["expect"]
    core = cores[path.parent.parent.name]
    if expect["status"] != 200:
        with pytest.raises(InputError) as caught:
            core.predict_body(example["request"])
        assert caught.value.http_status == expect["status"]
        assert expect["message"] in str(caught.value)
        return
    predictions = core.predict_body(example["request"])["predictions"]
    assert len(predictions) == expect["predictions"]
    for prediction in predictions:
        assert sorted(prediction) == sorted(expect["keys"])
    for prediction, wanted in zip(predictions, expect.get("match", []), strict=False):
        assert {key: prediction[key] for key in wanted} == wanted
