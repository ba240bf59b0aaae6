"""Server-side batching for an asyncio server: requests validated on their own, predicted together.

An asyncio server (KServe's ModelServer) awaits one coroutine per request. Each request is read and
validated in its own coroutine, so a bad one is refused alone; its decoded rows then wait in a queue,
and forward passes run in worker threads, as many at a time as there are workers. A forward pass takes
every request queued when it starts (up to a limit) and never waits for more: alone, a request goes
straight to the model; under load, the requests that arrived while the workers were busy share the next. The event
loop meanwhile keeps accepting and validating requests, since torch releases the GIL while it computes.

No KServe or torch import: the module travels with the rest of the runtime to Python 3.9 images.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Generic, TypeVar

RowT = TypeVar("RowT")
AnswerT = TypeVar("AnswerT")


# Requests that may wait per worker and per request a forward pass takes, beyond those being predicted.
# The event loop keeps reading and decoding while the workers compute, so without a bound an overloaded
# predictor would hold every decoded request a client sends in memory instead of pushing back.
QUEUE_PASSES = 8


class Overloaded(RuntimeError):
    """The queue is full: the request is refused at once (HTTP 503) rather than held in memory."""


class _Pending(Generic[RowT, AnswerT]):
    """One request waiting for a forward pass: its rows, and where its answers go."""

    __slots__ = ("future", "rows")

    def __init__(self, rows: Sequence[RowT], future: asyncio.Future[list[AnswerT]]) -> None:
        self.rows = rows
        self.future = future


class GreedyBatcher(Generic[RowT, AnswerT]):
    """Runs forward passes in worker threads, each over every request queued when it starts.

    Args:
        run: Predicts the rows of several requests in one forward pass and returns one answer per row,
            in order. It runs in a worker thread, never on the event loop.
        max_requests: The most requests one forward pass serves (``batchSize`` of ``model-config.yaml``).
            With the per-request instance limit it bounds what one forward pass holds in memory.
        workers: Forward passes that may run at the same time, each in its own thread (``minWorkers``
            of ``model-config.yaml``, as TorchServe runs that many worker processes). With one torch
            thread each, two passes on two CPUs never wait for each other's threads.
        max_queued: Requests that may wait for a forward pass; one more is refused with
            :class:`Overloaded`. Default: ``QUEUE_PASSES`` forward passes' worth per worker.
        thread_name: Name prefix of the worker threads (thread dumps, profilers).

    Raises:
        ValueError: ``max_requests``, ``workers`` or ``max_queued`` is below 1.
    """

    def __init__(
        self,
        run: Callable[[list[RowT]], Sequence[AnswerT]],
        *,
        max_requests: int,
        workers: int = 1,
        max_queued: int | None = None,
        thread_name: str = "forward",
    ) -> None:
        if max_requests < 1:
            raise ValueError(f"max_requests must be positive, got {max_requests}")
        if workers < 1:
            raise ValueError(f"workers must be positive, got {workers}")
        self.max_requests = max_requests
        self.workers = workers
        self.max_queued = QUEUE_PASSES * workers * max_requests if max_queued is None else max_queued
        if self.max_queued < 1:
            raise ValueError(f"max_queued must be positive, got {self.max_queued}")
        self._run = run
        self._thread_name = thread_name
        self._queue: deque[_Pending[RowT, AnswerT]] = deque()
        self._passes: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._executor: ThreadPoolExecutor | None = None

    async def submit(self, rows: Sequence[RowT]) -> list[AnswerT]:
        """One request's answers, one per row, from the next forward pass that has room for it.

        Raises:
            Exception: Whatever the forward pass of this request's batch raised; the requests of other
                forward passes are not affected.
            Overloaded: ``max_queued`` requests already wait.
            RuntimeError: Called from a second event loop while the first still has requests queued.
        """
        loop = asyncio.get_running_loop()
        if self._loop is not loop and (self._passes or self._queue):
            raise RuntimeError("a GreedyBatcher serves one event loop at a time")
        self._loop = loop
        if len(self._queue) >= self.max_queued:
            raise Overloaded(f"{len(self._queue)} requests already wait for a forward pass: retry later")
        future: asyncio.Future[list[AnswerT]] = loop.create_future()
        self._queue.append(_Pending(rows, future))
        self._start_passes()
        # A cancelled wait (the client went away) cancels the future: the pass then skips the request.
        return await future

    def _start_passes(self) -> None:
        """Start a forward pass over what is queued for every worker that is free (on the event loop)."""
        while self._queue and len(self._passes) < self.workers:
            batch = self._take()
            if not batch:
                continue
            task = asyncio.get_running_loop().create_task(self._forward(batch))
            self._passes.add(task)
            task.add_done_callback(self._passes.discard)

    async def _forward(self, batch: list[_Pending[RowT, AnswerT]]) -> None:
        loop = asyncio.get_running_loop()
        rows = [row for pending in batch for row in pending.rows]
        try:
            answers = await loop.run_in_executor(self._worker(), self._run, rows)
            if len(answers) != len(rows):
                raise RuntimeError(f"a forward pass answered {len(answers)} rows for {len(rows)}")
        except asyncio.CancelledError:
            # The loop is shutting down: nobody is left to run what is queued.
            for pending in (*batch, *self._queue):
                pending.future.cancel()
            self._queue.clear()
            raise
        except Exception as err:  # it fails the requests of this batch, never the server
            for pending in batch:
                if not pending.future.done():
                    pending.future.set_exception(err)
        else:
            start = 0
            for pending in batch:
                end = start + len(pending.rows)
                if not pending.future.done():
                    pending.future.set_result(list(answers[start:end]))
                start = end
        self._passes.discard(asyncio.current_task())  # type: ignore[arg-type]
        self._start_passes()

    def _take(self) -> list[_Pending[RowT, AnswerT]]:
        batch: list[_Pending[RowT, AnswerT]] = []
        while self._queue and len(batch) < self.max_requests:
            pending = self._queue.popleft()
            if not pending.future.done():
                batch.append(pending)
        return batch

    def _worker(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix=self._thread_name)
        return self._executor
