"""Shared fixtures of the serving tests: one packaged build per session, and process/socket helpers."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest

from infra.serving.catalog import MODEL_HANDLERS, Catalog
from infra.serving.examples import Example
from infra.serving.kserve_process import KServeServer
from infra.serving.local_server import LocalServer, ServedModel
from infra.serving.manifest import Manifest
from infra.serving.package import package_models
from infra.serving.processes import LOOPBACK
from infra.serving.torchserve_process import TorchServeServer

ROOT = Path(__file__).resolve().parents[2]
LOOPBACK_HOSTS = {"127.0.0.1", "::ffff:127.0.0.1"}


@pytest.fixture(scope="session")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    """A snapshot of model-handlers/ taken at the start of the session.

    Versions are content hashes: tests that compare them must not see a file someone edits meanwhile.
    """
    root = tmp_path_factory.mktemp("snapshot") / "model-handlers"
    shutil.copytree(MODEL_HANDLERS, root, ignore=shutil.ignore_patterns("__pycache__", ".*"))
    return Catalog(root)


@pytest.fixture(scope="session")
def packaged(tmp_path_factory: pytest.TempPathFactory, catalog: Catalog) -> tuple[Path, Manifest]:
    """Every model packaged once per session (training included): the output folder and its manifest."""
    out = tmp_path_factory.mktemp("serving") / "models"
    return out, package_models(out, catalog=catalog)


def group_pids(pgid: int) -> set[int]:
    pids = set()
    for process in psutil.process_iter():
        try:
            if os.getpgid(process.pid) == pgid:
                pids.add(process.pid)
        except (ProcessLookupError, psutil.Error):
            continue
    return pids


def listening(pids: set[int]) -> set[tuple[str, int]]:
    """(host, port) of every listening TCP socket of these processes, as `ss -ltnp` reports them."""
    found: set[tuple[str, int]] = set()
    if shutil.which("ss"):
        output = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
        for line in output.splitlines():
            owners = {int(pid) for pid in re.findall(r"pid=(\d+)", line)}
            if owners & pids:
                host, _, port = line.split()[3].rpartition(":")
                found.add((host.strip("[]"), int(port)))
        return found
    for pid in pids:
        for conn in psutil.Process(pid).net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN:
                found.add((conn.laddr.ip, conn.laddr.port))
    return found


def processes_mentioning(text: str) -> list[str]:
    """Command lines of running processes that mention `text` (a work dir): none may outlive a server."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(process.info.get("cmdline") or [])
        if text in cmdline and process.pid != os.getpid():
            found.append(cmdline)
    return found


def can_listen_on(port: int) -> bool:
    """Whether a new server could listen on the port now.

    With SO_REUSEADDR, as uvicorn and TorchServe bind: a connection of the stopped server left in
    TIME_WAIT (the server closed an idle keep-alive connection, 5 s for uvicorn) does not hold the port.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


@contextmanager
def running(server: LocalServer) -> Iterator[LocalServer]:
    """Start a server, wait for every model; on the way out stop it and check that nothing is left."""
    try:
        server.start()
        server.wait_ready()
        pgid = server.process_group()
        assert pgid is not None
        ports = {port for _, port in listening(group_pids(pgid))}
        yield server
    finally:
        pgid = server.process_group()
        server.stop()
    assert pgid is not None and not group_pids(pgid), "processes of the server survived stop()"
    assert not processes_mentioning(str(server.work_dir))
    assert all(can_listen_on(port) for port in ports), "a port of the server is still taken"


def served_models(catalog: Catalog, manifest: Manifest) -> list[ServedModel]:
    return [ServedModel(folder, catalog.runtime_dir, manifest.models[folder.name]) for folder in catalog.select()]


def example(catalog: Catalog, model: str, name: str) -> Example:
    return next(e for e in catalog.load(model).examples if e.name == name)


@pytest.fixture(scope="module")
def torchserve(packaged: tuple[Path, Manifest], catalog: Catalog,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[TorchServeServer]:
    """One real TorchServe with every model, token authorization on, for a test module."""
    server = TorchServeServer(served_models(catalog, packaged[1]), tmp_path_factory.mktemp("torchserve"))
    with running(server):
        yield server


@pytest.fixture(scope="module")
def kserve(packaged: tuple[Path, Manifest], catalog: Catalog,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[KServeServer]:
    """One real KServe ModelServer with every model's predictor, for a test module."""
    server = KServeServer(served_models(catalog, packaged[1]), tmp_path_factory.mktemp("kserve"))
    with running(server):
        yield server
