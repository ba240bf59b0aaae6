"""SIGTERM to a real KServe ModelServer during load loses no request it accepted.

This is what a predictor pod relies on (infra/components/failover.py): after the preStop sleep the
container gets SIGTERM, and uvicorn closes its listener, finishes the requests it is answering and exits.
A request that got a response must have got a 2xx with its whole body; a request the closed listener
refused (a connection error before any response) was never accepted and is counted apart.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from infra.serving.catalog import Catalog
from infra.serving.examples import check_response
from infra.serving.kserve_process import KServeServer
from infra.serving.manifest import Manifest
from tests.serving.conftest import example, group_pids, processes_mentioning, served_models

pytestmark = pytest.mark.integration

CLIENTS = 8
LOAD_BEFORE_SIGTERM_S = 3.0
EXIT_TIMEOUT_S = 20.0
# How long a request may sit unread on a connection under this load. Requests take a few ms to answer, but on a
# two-CPU machine the server's event loop shares the CPUs with its forward passes and the test's eight clients:
# a CI run saw one sit unread for more than half a second before the server closed its keep-alive connection.
UNREAD_WINDOW_S = 1.0


@dataclass(frozen=True)
class Outcome:
    started: float
    ended: float
    kind: str  # "answered", "refused" (no response at all) or "cut" (a response that broke off)
    status: int = 0
    problems: tuple[str, ...] = ()


def _load(url: str, body: bytes, expect, stop: threading.Event, outcomes: list[Outcome], lock: threading.Lock) -> None:
    # One keep-alive connection per client thread, as a proxy in front of the pod would hold.
    with httpx.Client(timeout=15.0, trust_env=False, headers={"Content-Type": "application/json"}) as client:
        while not stop.is_set():
            started = time.monotonic()
            try:
                with client.stream("POST", url, content=body) as response:
                    try:
                        text = response.read().decode()
                    except httpx.HTTPError as exc:
                        outcome = Outcome(started, time.monotonic(), "cut", response.status_code, (repr(exc),))
                    else:
                        outcome = Outcome(started, time.monotonic(), "answered", response.status_code,
                                          tuple(check_response(expect, response.status_code, text)))
            except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
                # Nothing came back: the listener was closed, or an idle keep-alive connection was.
                outcome = Outcome(started, time.monotonic(), "refused", problems=(repr(exc),))
                time.sleep(0.02)
            with lock:
                outcomes.append(outcome)


def test_sigterm_during_load_loses_no_accepted_request(packaged: tuple[Path, Manifest], catalog: Catalog,
                                                       tmp_path: Path):
    models = [m for m in served_models(catalog, packaged[1]) if m.name == "digits"]
    case = example(catalog, "digits", "batch-mixed-layouts")
    server = KServeServer(models, tmp_path / "kserve")
    outcomes: list[Outcome] = []
    lock, stop = threading.Lock(), threading.Event()
    # Not conftest.running(): its last check wants the port bindable again at once, but a server that closes
    # its connections itself leaves them in TIME_WAIT on that port for a while.
    threads: list[threading.Thread] = []
    try:
        server.start()
        server.wait_ready()
        pgid = server.process_group()
        assert pgid is not None
        threads = [threading.Thread(target=_load, args=(server.v1_url("digits"), case.body(), case.expect, stop,
                                                        outcomes, lock), daemon=True) for _ in range(CLIENTS)]
        for thread in threads:
            thread.start()
        time.sleep(LOAD_BEFORE_SIGTERM_S)
        sigterm_at = time.monotonic()
        # What the kubelet does: SIGTERM to the container's main process only (the group leader).
        os.kill(pgid, signal.SIGTERM)
        deadline = sigterm_at + EXIT_TIMEOUT_S
        while server.running() and time.monotonic() < deadline:
            time.sleep(0.05)
        exited_after = time.monotonic() - sigterm_at
        assert not server.running(), f"the server was still running {EXIT_TIMEOUT_S} s after SIGTERM"
        # Keep knocking briefly after the exit: every later attempt must be refused, not hang.
        time.sleep(0.5)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=20)
        pgid = server.process_group()
        server.stop()
    assert not any(thread.is_alive() for thread in threads)
    assert pgid is not None and not group_pids(pgid), "processes of the server survived"
    assert not processes_mentioning(str(server.work_dir))

    answered = [o for o in outcomes if o.kind == "answered"]
    refused = [o for o in outcomes if o.kind == "refused"]
    cut = [o for o in outcomes if o.kind == "cut"]
    summary = (f"{len(answered)} answered, {len(refused)} refused, {len(cut)} cut off; "
               f"server exited {exited_after:.2f} s after SIGTERM")
    print(summary)
    assert not cut, f"responses broke off mid-body: {cut[:3]} ({summary})"
    bad = [o for o in answered if not 200 <= o.status < 300 or o.problems]
    assert not bad, f"accepted requests got a failure: {bad[:3]} ({summary})"
    assert len([o for o in answered if o.ended < sigterm_at]) >= CLIENTS, f"too little load before SIGTERM ({summary})"
    # Draining happened: requests in flight when SIGTERM arrived were still answered, with a 2xx, after it.
    assert any(o.started < sigterm_at < o.ended for o in answered), f"no request was in flight at SIGTERM ({summary})"
    # Every request that got no response at all went out after SIGTERM, or so shortly before it that the server
    # had not read it yet: a request written onto an idle keep-alive connection while the server closes that
    # connection is reset unread (the keep-alive race every HTTP server has; in a pod the preStop sleep takes it
    # out of the endpoints before SIGTERM, so none arrive then). One sent earlier had been read, and was lost.
    early = [o for o in refused if o.started < sigterm_at - UNREAD_WINDOW_S]
    assert not early, f"requests sent before SIGTERM got no response: {early[:3]} ({summary})"
    assert refused, f"the load never saw the listener close ({summary})"
