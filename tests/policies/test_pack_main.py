"""`policies/__main__.py` starts the way the Pulumi CLI starts it: cwd = the pack, prints its port."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_pack_starts_its_analyzer_server_and_prints_the_port() -> None:
    process = subprocess.Popen([sys.executable, str(ROOT / "policies" / "__main__.py")], cwd=ROOT / "policies",
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first_line: list[str] = []
        reader = threading.Thread(target=lambda: first_line.append(process.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout=30)
        assert first_line and first_line[0].strip().isdigit(), (
            f"no port on stdout; stderr: {process.stderr.read() if process.poll() is not None else '(running)'}")
        assert 0 < int(first_line[0]) < 65536
        assert process.poll() is None, "the pack server exited instead of serving"
    finally:
        process.kill()
        process.wait(timeout=10)
