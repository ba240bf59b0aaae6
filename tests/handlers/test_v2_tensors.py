"""v2 input tensors checked as whole arrays (``ModelCore.decode_tensors``) for digits, ranker and the benchmark's
ResNet-18: valid tensors decode to rows ``collate`` accepts (numpy rows, not Python lists), and each kind of
bad tensor gets a message naming the input, the row where it matters and what was expected.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.handlers.conftest import ModelFolder, import_model_folder

RESNET_FOLDER = Path(__file__).resolve().parents[2] / "benchmarks" / "resnet18_model"


def refused(core: Any, tensors: dict[str, Any]) -> str:
    from aip_serving.errors import InputError

    with pytest.raises(InputError) as caught:
        core.decode_tensors(tensors)
    return caught.value.message


def digit_images(count: int, dtype: Any = np.float32) -> np.ndarray:
    return (np.arange(count * 64).reshape(count, 64) % 17).astype(dtype)


# -- digits --------------------------------------------------------------------------------------------


def test_digits_rows_are_views_of_the_tensor_not_python_lists(digits_core: Any) -> None:
    image = digit_images(3)
    rows = digits_core.decode_tensors({"image": image})
    assert len(rows) == 3
    assert all(isinstance(row, np.ndarray) and row.dtype == np.float32 and row.shape == (64,) for row in rows)
    assert all(np.shares_memory(row, image) for row in rows)  # no copy, let alone a list of floats
    nested = digits_core.decode_tensors({"image": image.reshape(3, 8, 8)})
    assert all(np.array_equal(a, b) for a, b in zip(rows, nested, strict=True))


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint8, np.int64, np.float16])
def test_digits_v2_predictions_equal_the_v1_ones(digits_core: Any, dtype: Any) -> None:
    image = digit_images(4, dtype)
    v2 = digits_core.predict_decoded(digits_core.decode_tensors({"image": image}))
    v1 = digits_core.predict(image.astype(np.float64).tolist())
    assert [p["label"] for p in v2] == [p["label"] for p in v1]
    for a, b in zip(v2, v1, strict=True):
        assert a["probabilities"] == pytest.approx(b["probabilities"], abs=1e-6)


def test_digits_collate_takes_v1_and_v2_rows_in_one_batch(digits_core: Any) -> None:
    image = digit_images(2)
    mixed = [*digits_core.decode_instances(image.tolist()), *digits_core.decode_tensors({"image": image})]
    predictions = digits_core.predict_decoded(mixed)
    assert predictions[:2] == predictions[2:]


NAN_ROW = np.zeros((3, 64), dtype=np.float32)
NAN_ROW[1, 5] = np.nan
BAD_ROWS = np.zeros((9, 8, 8), dtype=np.float32)
for _row in range(1, 9):
    BAD_ROWS[_row, 2, 3] = 16 + _row

DIGITS_REFUSED = [
    ({"image": np.zeros(64, dtype=np.float32)}, 'input "image": expected shape [N, 64] or [N, 8, 8], got [64]'),
    ({"image": np.zeros((2, 63), dtype=np.float32)},
     'input "image": expected shape [N, 64] or [N, 8, 8], got [2, 63]'),
    ({"image": np.zeros((2, 8, 7), dtype=np.float32)},
     'input "image": expected shape [N, 64] or [N, 8, 8], got [2, 8, 7]'),
    ({"image": np.zeros((1, 64), dtype=bool)},
     'input "image": expected pixels in [0, 16] (FP32 or another number datatype), got BOOL'),
    ({"image": np.array([[b"1"] * 64], dtype=object)},
     'input "image": expected pixels in [0, 16] (FP32 or another number datatype), got BYTES'),
    ({"image": NAN_ROW}, 'input "image" row 1, element [5]: expected a finite number, got NaN'),
    ({"image": np.full((1, 64), np.inf)}, 'input "image" row 0, element [0]: expected a finite number, got Infinity'),
    ({"image": np.full((2, 64), 17, dtype=np.int64)},
     'input "image" row 0, element [0]: expected a value in [0, 16], got 17; '
     'input "image" row 1, element [0]: expected a value in [0, 16], got 17'),
    ({"image": np.full((1, 8, 8), -0.5)}, 'input "image" row 0, element [0, 0]: expected a value in [0, 16], got -0.5'),
    ({"image": BAD_ROWS},
     'input "image" row 1, element [2, 3]: expected a value in [0, 16], got 17; '
     'input "image" row 2, element [2, 3]: expected a value in [0, 16], got 18; '
     'input "image" row 3, element [2, 3]: expected a value in [0, 16], got 19; '
     'input "image" row 4, element [2, 3]: expected a value in [0, 16], got 20; '
     'input "image" row 5, element [2, 3]: expected a value in [0, 16], got 21; and 3 more problems'),
    ({"image": np.zeros((65, 64), dtype=np.float32)},
     'input "image" has 65 rows, more than the limit of 64 per request'),
    ({"image": np.zeros((0, 64), dtype=np.float32)}, 'input "image" has no rows: send at least one'),
    ({"image": np.zeros((1, 64)), "pixels": np.zeros((1, 64))}, 'unknown input "pixels" (expected: image)'),
    ({}, 'missing input "image" ([N, 64] or [N, 8, 8], 0..16)'),
]


@pytest.mark.parametrize(("tensors", "message"), DIGITS_REFUSED)
def test_digits_refuses_bad_tensors_with_exact_messages(digits_core: Any, tensors: dict[str, Any],
                                                        message: str) -> None:
    assert refused(digits_core, tensors) == message


def test_the_default_decode_tensors_goes_through_the_v1_checks(digits_core: Any) -> None:
    """A core that does not override decode_tensors checks v2 rows as v1 instances, value by value."""
    from aip_serving.core import ModelCore

    plain = type(digits_core).__new__(type(digits_core))
    plain.__dict__.update(digits_core.__dict__)
    plain.decode_tensors = ModelCore.decode_tensors.__get__(plain)
    assert refused(plain, {"image": np.zeros((1, 64), dtype=bool)}) == "instances[0][0]: expected a number, got boolean"
    rows = plain.decode_tensors({"image": digit_images(1)})
    assert isinstance(rows[0], list)


# -- ranker --------------------------------------------------------------------------------------------


def test_ranker_decodes_the_same_queries_as_v1(ranker_core: Any) -> None:
    Query = type(ranker_core.decode_instances([{"user_id": 1}])[0])
    cases = [
        ({"user_id": np.array([1, 2], dtype=np.int64)}, [Query(1, 10, True), Query(2, 10, True)]),
        ({"user_id": np.array([[1], [2]], dtype=np.int32), "k": np.array([4])}, [Query(1, 4, True), Query(2, 4, True)]),
        ({"user_id": np.array([3, 4], dtype=np.uint16), "k": np.array([5, 5]), "exclude_seen": np.array([False])},
         [Query(3, 5, False), Query(4, 5, False)]),
        ({"user_id": np.array([5, 6]), "exclude_seen": np.array([True, False])},
         [Query(5, 10, True), Query(6, 10, False)]),
    ]
    for tensors, expected in cases:
        decoded = ranker_core.decode_tensors(tensors)
        assert decoded == expected
        assert all(type(q.user_id) is int and type(q.k) is int and type(q.exclude_seen) is bool for q in decoded)
    v2 = ranker_core.predict_decoded(ranker_core.decode_tensors({"user_id": np.array([7, 8]), "k": np.array([3])}))
    v1 = ranker_core.predict([{"user_id": 7, "k": 3}, {"user_id": 8, "k": 3}])
    assert v2 == v1


RANKER_REFUSED = [
    ({"user_id": np.zeros((2, 2), dtype=np.int64)}, 'input "user_id": expected shape [N], got [2, 2]'),
    ({"user_id": np.array([1.5])},
     'input "user_id": expected integer user ids (INT64 or another integer datatype), got FP64'),
    ({"user_id": np.array([True])},
     'input "user_id": expected integer user ids (INT64 or another integer datatype), got BOOL'),
    ({"user_id": np.array([1, 600, 2, -3])},
     'input "user_id" row 1: unknown user id 600 (known ids: 0..599); '
     'input "user_id" row 3: unknown user id -3 (known ids: 0..599)'),
    ({"user_id": np.array([1]), "k": np.array([0])}, 'input "k" row 0: expected a value in [1, 100], got 0'),
    ({"user_id": np.array([1, 2]), "k": np.array([5, 101])}, 'input "k" row 1: expected a value in [1, 100], got 101'),
    ({"user_id": np.array([1]), "k": np.array([5.0])},
     'input "k": expected integers in [1, 100] (INT64 or another integer type), got FP64'),
    ({"user_id": np.array([1, 2]), "k": np.array([4, 5])},
     'input "k": a v2 request answers [N, k] tensors, so every user needs the same k'),
    ({"user_id": np.array([1, 2]), "k": np.array([4, 4, 4])},
     'input "k": expected 1 or 2 values (one per user), got 3'),
    ({"user_id": np.array([1]), "exclude_seen": np.array([1])},
     'input "exclude_seen": expected BOOL (true or false), got INT64'),
    ({"user_id": np.zeros(257, dtype=np.int64)},
     'input "user_id" has 257 rows, more than the limit of 256 per request'),
    ({"k": np.array([4])}, 'missing input "user_id" (INT64 [N])'),
    ({"user_id": np.array([1]), "top": np.array([4])},
     'unknown input "top" (expected: user_id, k, exclude_seen)'),
]


@pytest.mark.parametrize(("tensors", "message"), RANKER_REFUSED)
def test_ranker_refuses_bad_tensors_with_exact_messages(ranker_core: Any, tensors: dict[str, Any],
                                                        message: str) -> None:
    assert refused(ranker_core, tensors) == message


# -- the benchmark's ResNet-18 ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def resnet(runtime_on_path: None) -> ModelFolder:
    return import_model_folder(RESNET_FOLDER)


@pytest.fixture(scope="module")
def resnet_core(resnet: ModelFolder) -> Any:
    import torch

    torch.manual_seed(0)
    return resnet.core.ResNetCore(resnet.core.ResNetCore.build_model())


def pixels(core: Any, count: int, dtype: Any = np.uint8) -> np.ndarray:
    return (np.arange(count * 3 * core.side * core.side) % 256).reshape(count, 3, core.side, core.side).astype(dtype)


def test_resnet_rows_stay_numpy_and_batch_with_v1_rows(resnet_core: Any) -> None:
    image = pixels(resnet_core, 2, np.float32)
    rows = resnet_core.decode_tensors({"image": image})
    assert all(isinstance(row, np.ndarray) and row.dtype == np.float32 and np.shares_memory(row, image) for row in rows)
    compact = resnet_core.decode_tensors({"image": image.astype(np.uint8)})
    assert all(np.array_equal(a, b) for a, b in zip(rows, compact, strict=True))
    v1 = resnet_core.decode_instances([image[0].astype(np.int64).tolist()])
    first, second = resnet_core.predict_decoded([v1[0], rows[0]])  # one forward pass, both kinds of row
    assert first["classes"] == second["classes"]
    assert first["probabilities"] == pytest.approx(second["probabilities"], abs=1e-6)


def test_resnet_declares_its_v2_tensors(resnet: ModelFolder) -> None:
    inputs, outputs = resnet.core.ResNetCore.v2_metadata()
    assert inputs == [{"name": "image", "datatype": "UINT8", "shape": [-1, 3, -1, -1]}]
    assert outputs == [{"name": "classes", "datatype": "INT64", "shape": [-1, 5]},
                       {"name": "probabilities", "datatype": "FP32", "shape": [-1, 5]}]


def test_resnet_refuses_bad_tensors(resnet_core: Any) -> None:
    side = resnet_core.side
    shape = f"[N, 3, {side}, {side}] (channels, rows, columns)"
    assert refused(resnet_core, {"image": pixels(resnet_core, 1)[:, :, :, 1:]}) == (
        f'input "image": expected shape {shape}, got [1, 3, {side}, {side - 1}]')
    assert refused(resnet_core, {"image": pixels(resnet_core, 1)[0]}) == (
        f'input "image": expected shape {shape}, got [3, {side}, {side}]')
    assert refused(resnet_core, {"image": pixels(resnet_core, 1).astype(bool)}) == (
        'input "image": expected pixels in [0, 255] (UINT8, FP32 or other numbers), got BOOL')
    image = pixels(resnet_core, 2, np.float32)
    image[1, 2, 10, 20] = np.nan
    assert refused(resnet_core, {"image": image}) == (
        'input "image" row 1, element [2, 10, 20]: expected a finite number, got NaN')
    image = pixels(resnet_core, 1, np.int64)
    image[0, 0, 0, 7] = 256
    assert refused(resnet_core, {"image": image}) == (
        'input "image" row 0, element [0, 0, 7]: expected a value in [0, 255], got 256')
    assert refused(resnet_core, {"image": np.zeros((17, 3, side, side), dtype=np.uint8)}) == (
        'input "image" has 17 rows, more than the limit of 16 per request')
    assert re.fullmatch(r'unknown input "x" \(expected: image\)',
                        refused(resnet_core, {"image": pixels(resnet_core, 1), "x": np.zeros(1)}))


# -- the helpers -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("dtype", "name"), [(np.float32, "FP32"), (np.float16, "FP16"), (np.uint8, "UINT8"),
                                             (np.int64, "INT64"), (bool, "BOOL"), (object, "BYTES")])
def test_v2_datatype_names(dtype: Any, name: str) -> None:
    from aip_serving.tensors import v2_datatype

    assert v2_datatype(np.dtype(dtype)) == name


def test_check_values_passes_valid_tensors_without_building_a_mask() -> None:
    from aip_serving.tensors import check_values

    check_values("x", np.zeros((0, 3)), low=0, high=1)
    check_values("x", np.array([0, 1], dtype=np.uint64), low=0, high=1)
    check_values("x", np.array([[0.0, 0.5]], dtype=np.float16), low=0, high=1)
