"""The digits model: training (accuracy, determinism), the core's validation table, one forward pass."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from tests.handlers.conftest import ModelFolder, Trained

BLANK = [0] * 64


def image(value: float = 0) -> list[Any]:
    return [value] * 64


def test_training_reaches_95_percent_on_held_out_digits(digits_trained: Trained) -> None:
    metrics = digits_trained.metrics
    assert metrics["test_accuracy"] >= 0.95, metrics
    assert metrics["test_examples"] == 360
    assert (digits_trained.model_dir / "weights.pt").is_file()
    assert metrics["train_seconds"] < 60


def test_training_is_deterministic(digits: ModelFolder, tmp_path: Any) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    digits.train.train(first, epochs=2)
    digits.train.train(second, epochs=2)
    a = torch.load(first / "weights.pt", weights_only=True)
    b = torch.load(second / "weights.pt", weights_only=True)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[key], b[key]) for key in a)
    assert (first / "weights.pt").read_bytes() == (second / "weights.pt").read_bytes()
    assert (first / "metrics.json").read_bytes() == (second / "metrics.json").read_bytes()


def test_training_restores_global_torch_settings(digits: ModelFolder, tmp_path: Any) -> None:
    threads = torch.get_num_threads()
    digits.train.train(tmp_path, epochs=1)
    assert torch.get_num_threads() == threads
    assert not torch.are_deterministic_algorithms_enabled()


def test_load_refuses_a_missing_weights_file(digits: ModelFolder, tmp_path: Any) -> None:
    with pytest.raises(FileNotFoundError, match=r"weights\.pt does not exist: train the model first"):
        digits.core.DigitsCore.load(tmp_path)


def nested(flat: list[Any]) -> list[list[Any]]:
    return [flat[row * 8 : row * 8 + 8] for row in range(8)]


def with_value(index: int, value: Any, base: list[Any] | None = None) -> list[Any]:
    pixels = list(base or BLANK)
    pixels[index] = value
    return pixels


BAD_INSTANCES = [
    (image()[:63], "instances[0]: expected 64 numbers (an 8x8 image), got 63"),
    ([*image(), 0], "instances[0]: expected 64 numbers (an 8x8 image), got 65"),
    ([], "instances[0]: expected 64 numbers (an 8x8 image), got 0"),
    ("0" * 64, "instances[0]: expected 64 numbers or 8 rows of 8 numbers (an 8x8 image), got string"),
    ({"pixels": BLANK}, "instances[0]: expected 64 numbers or 8 rows of 8 numbers (an 8x8 image), got object"),
    (None, "instances[0]: expected 64 numbers or 8 rows of 8 numbers (an 8x8 image), got null"),
    (with_value(5, "3"), "instances[0][5]: expected a number, got string"),
    (with_value(5, True), "instances[0][5]: expected a number, got boolean"),
    (with_value(5, None), "instances[0][5]: expected a number, got null"),
    (with_value(5, [1]), "instances[0][5]: expected a number, got array"),
    (with_value(63, math.nan), "instances[0][63]: expected a finite number, got NaN"),
    (with_value(0, math.inf), "instances[0][0]: expected a finite number, got Infinity"),
    (with_value(1, 16.5), "instances[0][1]: expected a value in [0, 16], got 16.5"),
    (with_value(1, -1), "instances[0][1]: expected a value in [0, 16], got -1"),
    (nested(BLANK)[:7], "instances[0]: expected 8 rows of 8 numbers (an 8x8 image), got 7 rows"),
    ([*nested(BLANK)[:7], BLANK[:7]], "instances[0][7]: expected 8 numbers, got 7"),
    ([*nested(BLANK)[:7], 5], "instances[0][7]: expected a row of 8 numbers, got number"),
    (nested(with_value(10, 99)), "instances[0][1][2]: expected a value in [0, 16], got 99"),
]


@pytest.mark.parametrize(("instance", "message"), BAD_INSTANCES)
def test_core_refuses_bad_instances_with_exact_messages(digits_core: Any, instance: Any, message: str) -> None:
    from aip_serving.errors import InputError

    with pytest.raises(InputError) as caught:
        digits_core.predict_body({"instances": [instance]})
    assert str(caught.value) == message


def test_core_reports_every_bad_instance_of_a_batch(digits_core: Any) -> None:
    from aip_serving.errors import InputError

    with pytest.raises(InputError) as caught:
        digits_core.predict([BLANK, BLANK[:10], BLANK, with_value(3, "x")])
    assert str(caught.value) == (
        "instances[1]: expected 64 numbers (an 8x8 image), got 10; instances[3][3]: expected a number, got string"
    )


def test_core_refuses_empty_and_oversized_batches(digits_core: Any) -> None:
    from aip_serving.errors import InputError

    with pytest.raises(InputError, match=r'^"instances" is empty: send at least one instance$'):
        digits_core.predict([])
    with pytest.raises(InputError, match=r'^"instances" has 65 instances, more than the limit of 64 per request$'):
        digits_core.predict([BLANK] * 65)


def test_batch_is_one_forward_pass_and_answers_in_order(digits_core: Any, digits: ModelFolder) -> None:
    _, test_x, _, test_y = digits.train.load_split()
    calls: list[int] = []
    hook = digits_core.model.register_forward_hook(lambda module, args, output: calls.append(len(args[0])))
    try:
        flat = test_x[:32].tolist()
        # Half the batch as flat lists of ints, half as 8x8 rows: both layouts in one pass.
        instances = [[int(v) for v in x] if i % 2 else nested(x) for i, x in enumerate(flat)]
        predictions = digits_core.predict(instances)
    finally:
        hook.remove()
    assert calls == [32]
    # Answers come back in request order: each is the answer the instance gets on its own.
    alone = [digits_core.predict([instance])[0] for instance in instances[:8]]
    assert [p["label"] for p in predictions[:8]] == [p["label"] for p in alone]
    for batched, single in zip(predictions, alone, strict=False):
        assert batched["probabilities"] == pytest.approx(single["probabilities"], abs=1e-5)
    assert sum(p["label"] == y for p, y in zip(predictions, test_y[:32].tolist(), strict=True)) >= 28
    for prediction in predictions:
        assert set(prediction) == {"label", "probabilities"}
        assert len(prediction["probabilities"]) == 10
        assert sum(prediction["probabilities"]) == pytest.approx(1, abs=1e-4)
        assert prediction["label"] == max(range(10), key=prediction["probabilities"].__getitem__)


def test_same_image_in_either_layout_gets_the_same_answer(digits_core: Any, digits: ModelFolder) -> None:
    _, test_x, _, _ = digits.train.load_split()
    flat = [int(v) for v in test_x[0]]
    flat_answer, nested_answer = digits_core.predict([flat, nested(flat)])
    assert flat_answer == nested_answer


def test_v2_tensors_map_to_instances_and_back(digits_core: Any) -> None:
    import numpy as np
    from aip_serving.errors import InputError

    rows = digits_core.instances_from_tensors({"image": np.zeros((2, 8, 8), dtype=np.float32)})
    predictions = digits_core.predict(rows)
    tensors = digits_core.tensors_from_predictions(predictions)
    assert tensors["label"].dtype == np.int64 and tensors["label"].shape == (2,)
    assert tensors["probabilities"].dtype == np.float32 and tensors["probabilities"].shape == (2, 10)
    with pytest.raises(InputError, match=r'^input "image": expected shape \[N, 64\] or \[N, 8, 8\], got \[64\]$'):
        digits_core.instances_from_tensors({"image": np.zeros(64)})
    with pytest.raises(InputError, match=r'^unknown input "pixels" \(expected: image\)$'):
        digits_core.instances_from_tensors({"image": np.zeros((1, 64)), "pixels": np.zeros((1, 64))})
    with pytest.raises(InputError, match=r'^missing input "image"'):
        digits_core.instances_from_tensors({})
    with pytest.raises(InputError, match=r"^instances\[0\]\[0\]: expected a number, got boolean$"):
        digits_core.predict(digits_core.instances_from_tensors({"image": np.zeros((1, 64), dtype=bool)}))
