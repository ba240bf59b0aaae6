"""The ranker: training (recall against popularity, determinism), validation table, one forward pass."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from tests.handlers.conftest import ModelFolder, Trained


def test_training_beats_the_popularity_baseline(ranker_trained: Trained) -> None:
    metrics = ranker_trained.metrics
    assert metrics["recall_at_10"] >= 1.5 * metrics["popularity_recall_at_10"], metrics
    assert metrics["recall_at_10"] >= 0.25, metrics
    assert metrics["train_seconds"] < 60


def test_training_is_deterministic(ranker: ModelFolder, tmp_path: Any) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    ranker.train.train(first, steps=10)
    ranker.train.train(second, steps=10)
    a = torch.load(first / "weights.pt", weights_only=True)
    b = torch.load(second / "weights.pt", weights_only=True)
    assert a.keys() == b.keys() == {"user_vectors.weight", "item_vectors.weight", "item_bias", "seen"}
    assert all(torch.equal(a[key], b[key]) for key in a)
    assert (first / "weights.pt").read_bytes() == (second / "weights.pt").read_bytes()


def test_dataset_is_deterministic_and_split_per_user(ranker: ModelFolder) -> None:
    one, two = ranker.dataset.make_interactions(3), ranker.dataset.make_interactions(3)
    assert np.array_equal(one.train, two.train) and np.array_equal(one.test, two.test)
    assert not (one.train & one.test).any()
    assert (one.test.sum(axis=1) >= 1).all()


BAD_INSTANCES = [
    (7, 'instances[0]: expected an object like {"user_id": 42, "k": 10}, got number'),
    ([7], 'instances[0]: expected an object like {"user_id": 42, "k": 10}, got array'),
    ({}, 'instances[0]: missing "user_id"'),
    ({"user_id": 1, "top": 3}, 'instances[0]: unknown field "top" (allowed: exclude_seen, k, user_id)'),
    ({"user_id": "1"}, "instances[0].user_id: expected an integer, got string"),
    ({"user_id": 1.0}, "instances[0].user_id: expected an integer, got number 1"),
    ({"user_id": False}, "instances[0].user_id: expected an integer, got boolean"),
    ({"user_id": None}, "instances[0].user_id: expected an integer, got null"),
    ({"user_id": 600}, "instances[0].user_id: unknown user id 600 (known ids: 0..599)"),
    ({"user_id": -3}, "instances[0].user_id: unknown user id -3 (known ids: 0..599)"),
    ({"user_id": 1, "k": 0}, "instances[0].k: expected an integer in [1, 100], got 0"),
    ({"user_id": 1, "k": 101}, "instances[0].k: expected an integer in [1, 100], got 101"),
    ({"user_id": 1, "k": "5"}, "instances[0].k: expected an integer, got string"),
    ({"user_id": 1, "exclude_seen": 1}, "instances[0].exclude_seen: expected true or false, got number"),
]


@pytest.mark.parametrize(("instance", "message"), BAD_INSTANCES)
def test_core_refuses_bad_instances_with_exact_messages(ranker_core: Any, instance: Any, message: str) -> None:
    from aip_serving.errors import InputError

    with pytest.raises(InputError) as caught:
        ranker_core.predict_body({"instances": [instance]})
    assert str(caught.value) == message


def test_batch_is_one_forward_pass_with_per_instance_k(ranker_core: Any) -> None:
    calls: list[int] = []
    hook = ranker_core.model.register_forward_hook(lambda module, args, output: calls.append(len(args[0])))
    try:
        predictions = ranker_core.predict(
            [{"user_id": 0, "k": 3}, {"user_id": 1}, {"user_id": 2, "k": 25, "exclude_seen": False}]
        )
    finally:
        hook.remove()
    assert calls == [3]
    assert [len(p["items"]) for p in predictions] == [3, 10, 25]
    for prediction in predictions:
        assert set(prediction) == {"items", "scores"}
        assert prediction["scores"] == sorted(prediction["scores"], reverse=True)
        assert len(set(prediction["items"])) == len(prediction["items"])


def test_seen_items_are_left_out_unless_asked_for(ranker_core: Any) -> None:
    seen = set(torch.nonzero(ranker_core.model.seen[5]).flatten().tolist())
    fresh, everything = ranker_core.predict(
        [{"user_id": 5, "k": 100}, {"user_id": 5, "k": 100, "exclude_seen": False}]
    )
    assert seen and not seen & set(fresh["items"])
    assert seen & set(everything["items"])


def test_answers_match_the_model_scores(ranker_core: Any) -> None:
    (prediction,) = ranker_core.predict([{"user_id": 9, "k": 5, "exclude_seen": False}])
    with torch.inference_mode():
        scores = ranker_core.model(torch.tensor([9]))[0]
    assert prediction["items"] == torch.topk(scores, 5).indices.tolist()


def test_v2_tensors_map_to_instances(ranker_core: Any) -> None:
    from aip_serving.errors import InputError

    rows = ranker_core.instances_from_tensors({"user_id": np.array([[1], [2]]), "k": np.array([4])})
    assert rows == [{"user_id": 1, "k": 4, "exclude_seen": True}, {"user_id": 2, "k": 4, "exclude_seen": True}]
    tensors = ranker_core.tensors_from_predictions(ranker_core.predict(rows))
    assert tensors["items"].shape == (2, 4) and tensors["items"].dtype == np.int64
    assert tensors["scores"].shape == (2, 4) and tensors["scores"].dtype == np.float32
    with pytest.raises(InputError, match=r"every user needs the same k"):
        ranker_core.instances_from_tensors({"user_id": np.array([1, 2]), "k": np.array([4, 5])})
    with pytest.raises(InputError, match=r'^input "exclude_seen": expected 1 or 2 values \(one per user\), got 3$'):
        ranker_core.instances_from_tensors({"user_id": np.array([1, 2]), "exclude_seen": np.array([True] * 3)})
    with pytest.raises(InputError, match=r'^missing input "user_id"'):
        ranker_core.instances_from_tensors({"k": np.array([4])})
    with pytest.raises(InputError, match=r'^input "user_id": expected shape \[N\], got \[2, 2\]$'):
        ranker_core.instances_from_tensors({"user_id": np.zeros((2, 2), dtype=np.int64)})
    with pytest.raises(InputError, match=r"^instances\[0\]\.user_id: expected an integer, got number 1.5$"):
        ranker_core.predict(ranker_core.instances_from_tensors({"user_id": np.array([1.5])}))
