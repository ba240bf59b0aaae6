"""Server processes in a process group of their own, so stopping one leaves nothing behind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path

LOOPBACK = "127.0.0.1"


def free_ports(count: int, host: str = LOOPBACK) -> list[int]:
    """Distinct ports that are free on `host` right now (the kernel picks them: bind to port 0).

    All sockets stay open until every port is chosen, so the same port is never handed out twice.
    """
    with ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((host, 0))
            ports.append(sock.getsockname()[1])
        return ports


def port_is_free(port: int, host: str = LOOPBACK) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


class ProcessGroup:
    """A child started as the leader of a new session; everything it starts shares its process group.

    TorchServe's Java frontend and its Python workers, or KServe's server, are all stopped by
    signalling the group, even when the leader itself has already exited.
    """

    def __init__(self, command: Sequence[str], *, cwd: Path, env: Mapping[str, str], log_file: Path) -> None:
        self.command = list(command)
        self.log_file = log_file
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with log_file.open("ab") as log:
            # start_new_session: a Ctrl-C in the terminal reaches only `aip`, which then stops the group
            # in order (instead of every process racing to die on its own).
            self.process = subprocess.Popen(self.command, cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.pgid = self.process.pid

    @property
    def pid(self) -> int:
        return self.process.pid

    def leader_alive(self) -> bool:
        return self.process.poll() is None

    def group_alive(self) -> bool:
        """Whether any process of the group still exists."""
        self.process.poll()  # reap the leader if it has exited, so it no longer counts
        try:
            os.killpg(self.pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def wait_group(self, timeout: float) -> bool:
        """Wait until every process of the group is gone; True when it is."""
        deadline = time.monotonic() + timeout
        while self.group_alive():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def stop(self, *, grace: float = 20.0) -> None:
        """SIGTERM the group, then SIGKILL whatever is left after `grace` seconds."""
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
            if not self.group_alive():
                return
            try:
                os.killpg(self.pgid, sig)
            except ProcessLookupError:
                return
            if self.wait_group(wait):
                return
        raise RuntimeError(f"processes of group {self.pgid} ({self.command[0]}) survived SIGKILL")

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])
