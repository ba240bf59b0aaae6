"""The plan of benchmarks/serving.py: rotation of a round's order and the raw reference's batch sizes."""

from __future__ import annotations

import pytest
from serving_plan import (
    FULL,
    QUICK,
    TARGETS,
    THROUGHPUT_CONCURRENCY,
    raw_batch_sizes,
    round_order,
)


def test_every_target_runs_first_once_and_in_every_position_over_as_many_rounds():
    orders = [round_order(TARGETS, r) for r in range(len(TARGETS))]
    assert [order[0] for order in orders] == list(TARGETS)
    for position in range(len(TARGETS)):
        assert {order[position] for order in orders} == set(TARGETS)
    assert all(sorted(order) == sorted(TARGETS) for order in orders)


def test_rotation_repeats_and_accepts_what_is_left():
    assert round_order(["a", "b", "c"], 4) == ["b", "c", "a"]
    assert round_order(["a"], 7) == ["a"]
    assert round_order([], 2) == []


@pytest.mark.parametrize(("concurrency", "batch_size", "per_request", "expected"), [
    (16, 8, 1, (1, 8)),     # digits: TorchServe forms at most batchSize 8 out of 16 in flight
    (16, 16, 1, (1, 16)),   # ranker
    (4, 8, 1, (1, 4)),      # resnet18: only 4 requests in flight
    (1, 8, 1, (1,)),        # one in flight: never a batch
    (16, 8, 2, (2, 16)),
])
def test_raw_batch_sizes_are_what_the_server_can_form(concurrency, batch_size, per_request, expected):
    assert raw_batch_sizes(concurrency, batch_size, per_request) == expected


def test_raw_batch_sizes_refuse_nonsense():
    with pytest.raises(ValueError):
        raw_batch_sizes(0, 8, 1)


def test_cells_and_modes():
    assert THROUGHPUT_CONCURRENCY == {"digits": 16, "ranker": 16, "resnet18": 4}
    assert [t.key for t in TARGETS] == ["torchserve/v1-json", "kserve/v1-json", "kserve/v2-binary", "kserve/v2-grpc"]
    assert QUICK.rounds == 3 and FULL.rounds >= 5
    assert QUICK.phase_seconds("digits") == 1.5 and QUICK.phase_seconds("resnet18") == 2.0
    assert FULL.spread_bound < QUICK.spread_bound
