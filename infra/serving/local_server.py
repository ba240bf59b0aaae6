"""What `aip serve` needs from a local server, whichever runtime runs it."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import httpx

from infra.serving.catalog import ModelFolder
from infra.serving.manifest import PackagedModel

READY_TIMEOUT_S = 180.0


@dataclass(frozen=True)
class ServedModel:
    """A model folder, the shared runtime next to it and its packaged artifacts."""

    folder: ModelFolder
    runtime_dir: Path
    package: PackagedModel

    @property
    def name(self) -> str:
        return self.folder.name


@dataclass(frozen=True)
class Endpoint:
    """One URL a user can call."""

    model: str
    method: str
    url: str
    what: str


class ServerFailed(Exception):
    """The server exited or never became ready; the message ends with its log's last lines."""


class LocalServer(Protocol):
    """A real model server on loopback, in a process group of its own, with a private work dir."""

    runtime: str
    work_dir: Path

    def start(self) -> None: ...

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None: ...

    def ready(self) -> bool: ...

    def running(self) -> bool: ...

    def stop(self) -> None: ...

    def endpoints(self) -> list[Endpoint]: ...

    def v1_url(self, model: str) -> str: ...

    def metrics_url(self) -> str: ...

    def request_headers(self) -> dict[str, str]: ...

    def process_group(self) -> int | None: ...

    def notes(self) -> list[str]: ...

    def log_tail(self, lines: int = 30) -> str: ...


def http_client(timeout: float = 30.0) -> httpx.Client:
    # trust_env=False: a proxy from the environment must never see loopback traffic.
    return httpx.Client(timeout=timeout, trust_env=False)


def child_env(work_dir: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a server: every temporary file in the work dir, nothing of ours on sys.path.

    PYTHONDONTWRITEBYTECODE keeps the children from writing __pycache__ into model-handlers/.
    """
    tmp = work_dir / "tmp"
    env = {key: value for key, value in os.environ.items() if key not in {"PYTHONPATH", "PYTHONHOME"}}
    env.update({"TMPDIR": str(tmp), "TEMP": str(tmp), "TMP": str(tmp), "PYTHONDONTWRITEBYTECODE": "1",
                "PYTHONUNBUFFERED": "1"})
    # The servers run with this interpreter's virtualenv first on PATH (TorchServe starts workers with it).
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.update(extra or {})
    return env


def wait_until(check: Callable[[], bool], *, timeout: float, alive: Callable[[], bool], what: str,
               log_tail: Callable[[], str]) -> None:
    """Poll `check` until it is true; ServerFailed when the server dies or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return
        if not alive():
            raise ServerFailed(f"the server exited while waiting for {what}:\n{log_tail()}")
        if time.monotonic() >= deadline:
            raise ServerFailed(f"timed out after {timeout:.0f} s waiting for {what}:\n{log_tail()}")
        time.sleep(0.2)
