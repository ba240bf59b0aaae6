"""Server-side batching of the KServe predictor: the greedy consumer alone, then through ``KServeModel.predict``.

A forward pass that blocks on an event stands in for a slow model, so which requests share a pass is
decided by the test, not by timing.
"""

from __future__ import annotations

import asyncio
import io
import json
import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest

from tests.handlers.conftest import Trained
from tests.handlers.test_kserve_model import BLANK, loaded

WAIT_S = 10


class Forward:
    """A forward pass that records its batches and thread, doubles each row, and can be held or made to fail."""

    def __init__(self, *, hold_first: bool = False, poison: Any = None) -> None:
        self.batches: list[list[Any]] = []
        self.threads: set[int] = set()
        self.entered = threading.Event()
        self.release = threading.Event()
        if not hold_first:
            self.release.set()
        self.poison = poison

    def __call__(self, rows: list[Any]) -> list[Any]:
        self.batches.append(list(rows))
        self.threads.add(threading.get_ident())
        self.entered.set()
        assert self.release.wait(WAIT_S), "the test never released the forward pass"
        if self.poison is not None and self.poison in rows:
            raise RuntimeError("the model failed")
        return [row * 2 for row in rows]


async def entered(forward: Forward) -> None:
    """Wait, without blocking the event loop, until the forward pass has started."""
    deadline = time.monotonic() + WAIT_S
    while not forward.entered.is_set():
        assert time.monotonic() < deadline, "the forward pass never started"
        await asyncio.sleep(0.001)


async def queued_behind_a_held_pass(batcher: Any, forward: Forward, first: Sequence[Any],
                                    later: Sequence[Sequence[Any]]) -> list[Any]:
    """Submit ``first``; once its forward pass runs (held), queue every request of ``later``; then release."""
    from aip_serving.batching import GreedyBatcher

    assert isinstance(batcher, GreedyBatcher)
    head = asyncio.ensure_future(batcher.submit(first))
    await entered(forward)
    tails = [asyncio.ensure_future(batcher.submit(rows)) for rows in later]
    await asyncio.sleep(0.01)  # every later request is queued, none has started a pass of its own
    assert len(forward.batches) == 1
    forward.release.set()
    return await asyncio.gather(head, *tails, return_exceptions=True)


def test_a_pass_takes_everything_queued_when_it_starts() -> None:
    from aip_serving.batching import GreedyBatcher

    forward = Forward(hold_first=True)
    batcher = GreedyBatcher(forward, max_requests=8)
    answers = asyncio.run(queued_behind_a_held_pass(batcher, forward, [1], [[2, 3], [4], [5, 6, 7]]))
    assert answers == [[2], [4, 6], [8], [10, 12, 14]]
    # The first request ran alone; the three that came meanwhile shared one pass, in arrival order.
    assert forward.batches == [[1], [2, 3, 4, 5, 6, 7]]


def test_a_pass_takes_at_most_max_requests() -> None:
    from aip_serving.batching import GreedyBatcher

    forward = Forward(hold_first=True)
    batcher = GreedyBatcher(forward, max_requests=2)
    answers = asyncio.run(queued_behind_a_held_pass(batcher, forward, [0], [[1], [2, 2], [3], [4], [5]]))
    assert answers == [[0], [2], [4, 4], [6], [8], [10]]
    assert forward.batches == [[0], [1, 2, 2], [3, 4], [5]]


def test_a_failing_pass_fails_only_its_own_requests() -> None:
    from aip_serving.batching import GreedyBatcher

    forward = Forward(hold_first=True, poison=13)
    batcher = GreedyBatcher(forward, max_requests=2)

    async def scenario() -> tuple[list[Any], list[Any]]:
        # [1] runs alone; [13] and [2] share the failing pass; [3] and [4] share the next one.
        first = await queued_behind_a_held_pass(batcher, forward, [1], [[13], [2], [3], [4]])
        after = await batcher.submit([5])
        return first, after

    (one, poisoned, neighbour, three, four), after = asyncio.run(scenario())
    assert one == [2] and three == [6] and four == [8] and after == [10]
    assert isinstance(poisoned, RuntimeError) and neighbour is poisoned
    assert forward.batches == [[1], [13, 2], [3, 4], [5]]


def test_alone_a_request_goes_straight_to_the_model() -> None:
    """At concurrency 1 nothing waits for a batch to fill: the pass starts with the one request queued."""
    from aip_serving.batching import GreedyBatcher

    forward = Forward()
    batcher = GreedyBatcher(forward, max_requests=8)

    async def sequential() -> list[float]:
        latencies = []
        for value in range(50):
            started = time.perf_counter()
            assert await batcher.submit([value]) == [value * 2]
            latencies.append(time.perf_counter() - started)
        return sorted(latencies)

    latencies = asyncio.run(sequential())
    assert forward.batches == [[value] for value in range(50)]
    # A hand-off to the worker thread and back: far below any batching delay (TorchServe's is 5 ms).
    assert latencies[len(latencies) // 2] < 0.005, latencies


def test_one_worker_runs_passes_in_one_thread_while_the_loop_keeps_serving() -> None:
    from aip_serving.batching import GreedyBatcher

    forward = Forward(hold_first=True)
    batcher = GreedyBatcher(forward, max_requests=4)

    async def scenario() -> int:
        pending = asyncio.ensure_future(batcher.submit([1]))
        await entered(forward)
        ticks = 0
        while ticks < 100:  # the loop runs other coroutines while the model computes
            await asyncio.sleep(0)
            ticks += 1
        forward.release.set()
        await pending
        await asyncio.gather(*(batcher.submit([value]) for value in range(10)))
        return ticks

    assert asyncio.run(scenario()) == 100
    assert len(forward.threads) == 1 and threading.get_ident() not in forward.threads


def test_a_request_whose_client_went_away_is_skipped() -> None:
    from aip_serving.batching import GreedyBatcher

    forward = Forward(hold_first=True)
    batcher = GreedyBatcher(forward, max_requests=8)

    async def scenario() -> list[Any]:
        head = asyncio.ensure_future(batcher.submit([1]))
        await entered(forward)
        gone = asyncio.ensure_future(batcher.submit([2]))
        kept = asyncio.ensure_future(batcher.submit([3]))
        await asyncio.sleep(0.01)
        gone.cancel()
        forward.release.set()
        return await asyncio.gather(head, kept)

    assert asyncio.run(scenario()) == [[2], [6]]
    assert forward.batches == [[1], [3]]


def test_workers_run_that_many_passes_at_once_and_no_more() -> None:
    from aip_serving.batching import GreedyBatcher

    forward = Forward(hold_first=True)
    batcher = GreedyBatcher(forward, max_requests=1, workers=2)

    async def scenario() -> list[Any]:
        first = asyncio.ensure_future(batcher.submit([1]))
        second = asyncio.ensure_future(batcher.submit([2]))
        third = asyncio.ensure_future(batcher.submit([3]))
        deadline = time.monotonic() + WAIT_S
        while len(forward.batches) < 2:  # both workers hold a pass; the third request waits
            assert time.monotonic() < deadline, "the second worker never started"
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.01)
        assert len(forward.batches) == 2
        forward.release.set()
        return await asyncio.gather(first, second, third)

    assert asyncio.run(scenario()) == [[2], [4], [6]]
    assert len(forward.threads) == 2 and sorted(map(tuple, forward.batches)) == [(1,), (2,), (3,)]


def test_a_full_queue_refuses_at_once_and_serves_again_once_drained() -> None:
    from aip_serving.batching import GreedyBatcher, Overloaded

    forward = Forward(hold_first=True)
    batcher = GreedyBatcher(forward, max_requests=1, max_queued=2)

    async def scenario() -> tuple[list[Any], list[Any]]:
        head = asyncio.ensure_future(batcher.submit([1]))
        await entered(forward)
        waiting = [asyncio.ensure_future(batcher.submit([value])) for value in (2, 3)]
        await asyncio.sleep(0)
        with pytest.raises(Overloaded, match="2 requests already wait"):
            await batcher.submit([4])
        forward.release.set()
        served = await asyncio.gather(head, *waiting)
        return served, await batcher.submit([5])

    served, later = asyncio.run(scenario())
    assert served == [[2], [4], [6]] and later == [10]


def test_the_default_queue_is_a_few_passes_per_worker() -> None:
    from aip_serving.batching import QUEUE_PASSES, GreedyBatcher

    batcher = GreedyBatcher(Forward(), max_requests=8, workers=2)
    assert batcher.max_queued == QUEUE_PASSES * 2 * 8
    with pytest.raises(ValueError, match="max_queued must be positive"):
        GreedyBatcher(Forward(), max_requests=1, max_queued=0)
    with pytest.raises(ValueError, match="workers must be positive"):
        GreedyBatcher(Forward(), max_requests=1, workers=0)


def test_the_limit_must_be_positive() -> None:
    from aip_serving.batching import GreedyBatcher

    with pytest.raises(ValueError, match="max_requests must be positive"):
        GreedyBatcher(Forward(), max_requests=0)


# -- through KServeModel.predict ---------------------------------------------------------------------


def recording(model: Any, forward: Forward) -> Forward:
    """Make ``model``'s forward passes go through ``forward`` first (for holding and counting)."""
    from aip_serving.batching import GreedyBatcher

    predict_decoded = model.core.predict_decoded

    def run(rows: list[Any]) -> list[Any]:
        forward(list(range(len(rows))))  # records, holds, may fail; the rows themselves go to the model
        return predict_decoded(rows)

    model.batcher = GreedyBatcher(run, max_requests=model.batch_size)
    return forward


def test_the_batch_limit_defaults_to_the_folders_batch_size(digits_trained: Trained) -> None:
    assert loaded(digits_trained).batch_size == 8  # model-handlers/digits/model-config.yaml
    assert loaded(digits_trained, batch_size=3).batch_size == 3
    with pytest.raises(ValueError, match="batch_size must be positive"):
        loaded(digits_trained, batch_size=0)


def test_concurrent_requests_share_a_pass_and_a_bad_one_is_refused_alone(digits_trained: Trained) -> None:
    from kserve.errors import InvalidInput

    model = loaded(digits_trained, batch_size=8)
    forward = recording(model, Forward(hold_first=True))
    images = [[min(16, (row * 7 + pixel) % 17) for pixel in range(64)] for row in range(6)]
    alone = [model.core.predict([image])[0] for image in images]

    async def scenario() -> list[Any]:
        head = asyncio.ensure_future(model.predict({"instances": [images[0]]}, {}))
        await entered(forward)
        later = [
            model.predict({"instances": images[1:3]}, {}),
            model.predict(json.dumps({"instances": [BLANK[:5]]}).encode(), {}),  # refused before any pass
            model.predict({"instances": images[3:6]}, {}),
        ]
        tails = [asyncio.ensure_future(call) for call in later]
        await asyncio.sleep(0.05)
        forward.release.set()
        return await asyncio.gather(head, *tails, return_exceptions=True)

    first, two, refused, three = asyncio.run(scenario())
    assert isinstance(refused, InvalidInput)
    assert str(refused) == "instances[0]: expected 64 numbers (an 8x8 image), got 5"
    assert forward.batches == [[0], [0, 1, 2, 3, 4]]  # 1 instance, then 2 + 3 instances of two requests
    answers = first["predictions"] + two["predictions"] + three["predictions"]
    assert [a["label"] for a in answers] == [a["label"] for a in alone]
    for answer, single in zip(answers, alone, strict=True):
        assert answer["probabilities"] == pytest.approx(single["probabilities"], abs=1e-5)


def test_a_failing_forward_pass_is_a_500_for_its_requests_only(digits_trained: Trained) -> None:
    from aip_serving.logs import configure_request_logger

    model = loaded(digits_trained, batch_size=2)
    forward = recording(model, Forward(hold_first=True))
    stream = io.StringIO()
    configure_request_logger(stream)
    failing = {"count": 0}
    original = model.core.forward

    def forward_failing_once(inputs: Any) -> Any:
        failing["count"] += 1
        if failing["count"] == 2:
            raise RuntimeError("CUDA error: out of memory")
        return original(inputs)

    model.core.forward = forward_failing_once

    async def scenario() -> list[Any]:
        head = asyncio.ensure_future(model.predict({"instances": [BLANK]}, {"x-request-id": "first"}))
        await entered(forward)
        tails = [asyncio.ensure_future(model.predict({"instances": [BLANK]}, {"x-request-id": f"r{index}"}))
                 for index in range(4)]
        await asyncio.sleep(0.05)
        forward.release.set()
        answers = await asyncio.gather(head, *tails, return_exceptions=True)
        answers.append(await model.predict({"instances": [BLANK]}, {"x-request-id": "after"}))
        return answers

    try:
        first, r0, r1, r2, r3, after = asyncio.run(scenario())
    finally:
        configure_request_logger()  # back to stdout for the other tests
    assert isinstance(r0, RuntimeError) and isinstance(r1, RuntimeError)  # the failing pass: r0 and r1
    for answer in (first, r2, r3, after):
        assert len(answer["predictions"]) == 1
    records = {record["http"]["request"]["id"]: record for record in map(json.loads, stream.getvalue().splitlines())}
    statuses = {request_id: record["http"]["response"]["status_code"] for request_id, record in records.items()}
    assert statuses == {"first": 200, "r0": 500, "r1": 500, "r2": 200, "r3": 200, "after": 200}
    assert records["r0"]["error"] == {"type": "RuntimeError"}
    # Latency runs from entering predict to the answer, so the held requests show the wait.
    assert records["r2"]["aip"]["latency_ms"] >= 40


def test_an_overloaded_predictor_answers_503_at_once_and_serves_on(digits_trained: Trained) -> None:
    from aip_serving.logs import configure_request_logger
    from kserve.errors import ServerNotReady

    model = loaded(digits_trained, batch_size=1, workers=1)
    forward = recording(model, Forward(hold_first=True))
    model.batcher.max_queued = 1
    stream = io.StringIO()
    configure_request_logger(stream)

    async def scenario() -> list[Any]:
        head = asyncio.ensure_future(model.predict({"instances": [BLANK]}, {"x-request-id": "head"}))
        await entered(forward)
        waiting = asyncio.ensure_future(model.predict({"instances": [BLANK]}, {"x-request-id": "waiting"}))
        await asyncio.sleep(0.01)
        with pytest.raises(ServerNotReady, match="digits is overloaded"):
            await model.predict({"instances": [BLANK]}, {"x-request-id": "refused"})
        forward.release.set()
        return [*await asyncio.gather(head, waiting), await model.predict({"instances": [BLANK]})]

    try:
        answers = asyncio.run(scenario())
    finally:
        configure_request_logger()
    assert all(len(answer["predictions"]) == 1 for answer in answers)
    records = {record["http"]["request"]["id"]: record for record in map(json.loads, stream.getvalue().splitlines())}
    assert records["refused"]["http"]["response"]["status_code"] == 503
    assert records["refused"]["error"] == {"type": "Overloaded"}
    assert records["head"]["http"]["response"]["status_code"] == 200
