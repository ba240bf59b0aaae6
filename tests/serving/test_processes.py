"""Process groups and free ports: what lets every server stop without leaving anything behind."""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path

import pytest

from infra.serving.processes import ProcessGroup, free_ports, port_is_free
from tests.serving.conftest import group_pids

# A leader that starts a grandchild which ignores SIGTERM: only the group's SIGKILL gets rid of it.
STUBBORN = """
import signal, subprocess, sys, time
subprocess.Popen([sys.executable, "-c",
                  "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"])
time.sleep(60)
"""


def test_free_ports_are_distinct_and_free():
    ports = free_ports(5)
    assert len(set(ports)) == 5 and all(port_is_free(p) for p in ports)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert not port_is_free(taken.getsockname()[1])


@pytest.mark.integration
def test_stop_ends_the_whole_group_even_what_ignores_sigterm(tmp_path: Path):
    group = ProcessGroup([sys.executable, "-c", STUBBORN], cwd=tmp_path, env={}, log_file=tmp_path / "log")
    pids: set[int] = set()
    for _ in range(100):  # until the grandchild exists
        pids = group_pids(group.pgid)
        if len(pids) == 2:
            break
        time.sleep(0.05)
    assert len(pids) == 2
    group.stop(grace=0.5)
    assert not group.group_alive() and not group_pids(group.pgid)


def test_torchserve_sockets_move_to_a_short_private_tmp_only_when_the_work_dir_is_too_deep(tmp_path: Path):
    from infra.serving.torchserve_process import SOCKET_PATH_MAX, _java_tmp_dir

    assert _java_tmp_dir(tmp_path / "tmp") == tmp_path / "tmp"
    deep = tmp_path / ("d" * SOCKET_PATH_MAX) / "tmp"
    short = _java_tmp_dir(deep)
    try:
        assert short != deep and short.is_dir() and short.name.startswith("aip-ts-")
        assert len(str(short / ".ts.sock.65535")) <= SOCKET_PATH_MAX
    finally:
        short.rmdir()
