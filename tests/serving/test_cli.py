"""`aip package` and `aip serve` as a user runs them: real processes, exit codes, no traceback for user errors."""

from __future__ import annotations

import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from infra.serving.manifest import MANIFEST_FILE, Manifest, load_manifest
from tests.serving.conftest import group_pids, processes_mentioning

ROOT = Path(__file__).resolve().parents[2]


def aip(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "infra.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.parametrize("command", ["package", "serve"])
def test_unknown_model_exits_2_with_the_list_of_models(command: str, tmp_path: Path):
    run = aip(command, "--models", "digits,nope", "--out", str(tmp_path / "models"))
    assert run.returncode == 2
    assert "unknown model 'nope'" in run.stderr and "digits, ranker" in run.stderr
    assert "Traceback" not in run.stderr
    assert not (tmp_path / "models").exists()  # nothing built for a command that cannot run


@pytest.mark.parametrize("args", [["serve", "--port", "70000"], ["serve", "--runtime", "triton"],
                                  ["package", "--models", ","]])
def test_bad_options_exit_2(args: list[str]):
    run = aip(*args)
    assert run.returncode == 2 and "Traceback" not in run.stderr


def test_a_port_in_use_exits_2_before_packaging(tmp_path: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = aip("serve", "--port", str(port), "--out", str(tmp_path / "models"))
    assert run.returncode == 2 and f"port {port} on 127.0.0.1 is in use" in run.stderr
    assert not (tmp_path / "models").exists()


@pytest.fixture
def out(tmp_path: Path, packaged: tuple[Path, Manifest]) -> Path:
    """A copy of the session's build (weights cached) for commands that package the real model-handlers/.

    The session's own build comes from a snapshot; the working tree may differ from it while someone edits.
    """
    copy = tmp_path / "models"
    shutil.copytree(packaged[0], copy)
    return copy


@pytest.mark.integration
def test_package_prints_the_versions_it_wrote(out: Path):
    run = aip("package", "--out", str(out))
    assert run.returncode == 0, run.stderr
    for name, entry in load_manifest(out / MANIFEST_FILE).models.items():
        assert name in run.stdout and entry.version in run.stdout


@pytest.mark.integration
@pytest.mark.parametrize("runtime", ["torchserve", "kserve"])
def test_serve_smoke_passes_and_leaves_nothing_behind(runtime: str, out: Path):
    run = aip("serve", "--smoke", "--runtime", runtime, "--out", str(out))
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"smoke test on {runtime}" in run.stdout and "passed" in run.stdout
    if runtime == "kserve":
        assert re.search(r"gRPC 127\.0\.0\.1:\d+  \(KServe v2 gRPC inference\.GRPCInferenceService/ModelInfer, "
                         r"digits ", run.stdout), run.stdout
    assert "Traceback" not in run.stderr
    serve_root = out / ".serve"
    assert not serve_root.exists()
    assert not processes_mentioning(str(serve_root))
    assert not (out.parent / "serve").exists()  # never beside the output folder


SERVE_DIGITS = ["serve", "--models", "digits"]
# Runs `aip` with the pty named by argv[1] as its controlling terminal (Popen's start_new_session made it a
# session leader; opening a tty then makes it the session's terminal), like a shell in a terminal window.
ON_TERMINAL = ("import os, sys; fd = os.open(sys.argv[1], os.O_RDWR); [os.dup2(fd, i) for i in (0, 1, 2)]; "
               "os.execv(sys.executable, [sys.executable, '-m', 'infra.cli', *sys.argv[2:]])")


def torchserve_groups(serve_root: Path) -> set[int]:
    """Process groups of the processes that run from a work dir under `serve_root` (TorchServe's)."""
    groups = set()
    for process in psutil.process_iter(["cmdline"]):
        if str(serve_root) in " ".join(process.info.get("cmdline") or []):
            try:
                groups.add(os.getpgid(process.pid))
            except ProcessLookupError:
                continue
    return groups


def read_until(read: Callable[[], str], marker: str, timeout: float = 180) -> str:
    seen = ""
    deadline = time.monotonic() + timeout
    while marker not in seen and time.monotonic() < deadline:
        chunk = read()
        if not chunk:
            break
        seen += chunk
    return seen


def assert_nothing_left(out: Path, groups: set[int]) -> None:
    assert groups, "TorchServe was not running"
    assert not any(group_pids(pgid) for pgid in groups), "processes of TorchServe's group survived"
    assert not processes_mentioning(str(out / ".serve"))
    assert not (out / ".serve").exists()


@pytest.mark.integration
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT],
                         ids=lambda s: s.name)
def test_a_stop_signal_stops_torchserve_and_everything_it_started(out: Path, sig: signal.Signals):
    serve = subprocess.Popen([sys.executable, "-m", "infra.cli", *SERVE_DIGITS, "--out", str(out)],
                             cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    groups: set[int] = set()
    try:
        assert serve.stdout is not None and serve.stderr is not None
        stdout = serve.stdout
        seen = read_until(stdout.readline, "Ctrl-C stops")
        assert "Ctrl-C stops" in seen, seen + serve.stderr.read()
        assert "/predictions/digits" in seen
        groups = torchserve_groups(out / ".serve")
        serve.send_signal(sig)
        assert serve.wait(timeout=90) == 0
        assert "stopping" in serve.stderr.read()
    finally:
        if serve.poll() is None:
            serve.kill()
    assert_nothing_left(out, groups)


@pytest.mark.integration
def test_closing_the_terminal_stops_torchserve_and_everything_it_started(out: Path):
    """The terminal hangs up: `aip` gets SIGHUP and its terminal fails every write (EIO); it still cleans up."""
    master, slave = os.openpty()
    serve = subprocess.Popen([sys.executable, "-c", ON_TERMINAL, os.ttyname(slave), *SERVE_DIGITS, "--out", str(out)],
                             cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    groups: set[int] = set()

    def read() -> str:
        ready, _, _ = select.select([master], [], [], 5)
        try:
            return os.read(master, 65536).decode(errors="replace") if ready else " "
        except OSError:  # EIO: no process has the terminal open (yet, or any more)
            return " " if serve.poll() is None else ""

    try:
        seen = read_until(read, "Ctrl-C stops")
        assert "Ctrl-C stops" in seen, seen
        groups = torchserve_groups(out / ".serve")
        os.close(slave)
        os.close(master)  # the terminal window closes
        master = -1
        assert serve.wait(timeout=90) == 0
    finally:
        if master >= 0:
            os.close(slave)
            os.close(master)
        if serve.poll() is None:
            serve.kill()
    assert_nothing_left(out, groups)
