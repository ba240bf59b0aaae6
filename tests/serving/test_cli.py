"""`aip package` and `aip serve` as a user runs them: real processes, exit codes, no traceback for user errors."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from infra.serving.manifest import MANIFEST_FILE, Manifest, load_manifest
from tests.serving.conftest import processes_mentioning

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
    assert "Traceback" not in run.stderr
    serve_root = out.parent / "serve"
    assert not serve_root.exists() or not any(serve_root.iterdir())
    assert not processes_mentioning(str(serve_root))


@pytest.mark.integration
def test_ctrl_c_stops_torchserve_and_everything_it_started(out: Path):
    serve = subprocess.Popen([sys.executable, "-m", "infra.cli", "serve", "--models", "digits", "--out", str(out)],
                             cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert serve.stdout is not None
        lines = []
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            line = serve.stdout.readline()
            lines.append(line)
            if not line or "Ctrl-C stops" in line:
                break
        assert "Ctrl-C stops" in lines[-1], "".join(lines) + serve.stderr.read()
        assert any("/predictions/digits" in line for line in lines)
        assert processes_mentioning(str(out.parent / "serve"))  # TorchServe is running
        serve.send_signal(signal.SIGINT)
        assert serve.wait(timeout=90) == 0
    finally:
        if serve.poll() is None:
            serve.kill()
    assert not processes_mentioning(str(out.parent / "serve"))
    assert not (out.parent / "serve").exists()
