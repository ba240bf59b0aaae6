"""Both models archived with torch-model-archiver and served by a real TorchServe 0.12 on loopback.

Marked ``integration`` (needs Java; about 15 s): ``pytest -m integration tests/handlers`` runs it alone,
``-m "not integration"`` leaves it out. TorchServe runs with no service envelope, as the platform does,
but with a hand-written config.properties that keeps the stock ``decode_input_request=true``: the worker
``json.loads`` every ``application/json`` body before the handler, as for a ``.mar`` under a stock
TorchServe. tests/serving/test_torchserve.py runs the platform's generated file (bodies as bytes).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from infra.serving.processes import free_ports
from tests.handlers.conftest import MODEL_HANDLERS, RUNTIME, Trained
from tests.prerequisites import JAVA_HINT, needs_tools

pytestmark = [
    pytest.mark.integration,
    needs_tools("java", hint=JAVA_HINT),
]

BLANK = [0] * 64
BIN = Path(sys.executable).parent


def archiver_command(name: str, weights: Path, export: Path) -> list[str]:
    """The command a packaging tool runs: model files at the archive root, aip_serving/ beside them."""
    folder = MODEL_HANDLERS / name
    return [
        str(BIN / "torch-model-archiver"), "--model-name", name, "--version", "1.0",
        "--model-file", str(folder / "model.py"),
        "--serialized-file", str(weights),
        "--handler", str(folder / "handler.py"),
        # A folder in --extra-files is copied by its contents: _runtime/ gives aip_serving/ at the root.
        "--extra-files", f"{folder / 'core.py'},{RUNTIME}",
        "--config-file", str(folder / "model-config.yaml"),
        "--export-path", str(export),
    ]


@pytest.fixture(scope="module")
def torchserve(trained: dict[str, Trained], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    work = tmp_path_factory.mktemp("torchserve")
    store, private_tmp = work / "model-store", work / "tmp"
    store.mkdir()
    private_tmp.mkdir()
    # torch-model-archiver stages files in $TMPDIR/<name>, TorchServe keeps pid and sockets there.
    env = {**os.environ, "TMPDIR": str(private_tmp), "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    for name, model in trained.items():
        subprocess.run(archiver_command(name, model.model_dir / "weights.pt", store), env=env, check=True,
                       timeout=120)
    inference, management, metrics, grpc_inference, grpc_management = free_ports(5)
    (work / "config.properties").write_text(
        "\n".join([
            f"inference_address=http://127.0.0.1:{inference}",
            f"management_address=http://127.0.0.1:{management}",
            f"metrics_address=http://127.0.0.1:{metrics}",
            "grpc_inference_address=127.0.0.1",
            "grpc_management_address=127.0.0.1",
            f"grpc_inference_port={grpc_inference}",
            f"grpc_management_port={grpc_management}",
            f"model_store={store}",
            "load_models=digits.mar,ranker.mar",
            f"allowed_urls=file://{store}/.*",
            f"vmargs=-Djava.io.tmpdir={private_tmp}",
        ]) + "\n"
    )
    start = [str(BIN / "torchserve"), "--start", "--ncs", "--disable-token-auth",
             "--model-store", str(store), "--ts-config", str(work / "config.properties")]
    try:
        # Output to a file, not a pipe: the Java server inherits it and outlives `torchserve --start`.
        with (work / "torchserve.out").open("wb") as out:
            subprocess.run(start, cwd=work, env=env, check=True, timeout=60, stdout=out, stderr=subprocess.STDOUT)
        wait_until_ready(f"http://127.0.0.1:{management}", ("digits", "ranker"), work)
        yield f"http://127.0.0.1:{inference}"
    finally:
        # Same TMPDIR as the start: that is where TorchServe keeps the pid file --stop reads.
        subprocess.run([str(BIN / "torchserve"), "--stop"], cwd=work, env=env, timeout=60, check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_until_ready(management: str, models: tuple[str, ...], work: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if all('"READY"' in httpx.get(f"{management}/models/{name}", timeout=2).text for name in models):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    logs = (work / "logs" / "model_log.log")
    pytest.fail(f"TorchServe models not ready: {logs.read_text()[-3000:] if logs.exists() else 'no log'}")


def test_valid_and_invalid_requests(torchserve: str) -> None:
    with httpx.Client(base_url=torchserve, timeout=30) as client:
        ok = client.post("/predictions/digits", json={"instances": [BLANK, [BLANK[:8]] * 8]})
        as_text = client.post("/predictions/digits", content=ok.request.content, headers={"content-type": "text/plain"})
        bad = client.post("/predictions/digits", json={"instances": [BLANK[:63]]})
        broken = client.post("/predictions/digits", content=b"{", headers={"content-type": "application/json"})
        kserve_route = client.post("/v1/models/ranker:predict", json={"instances": [{"user_id": 1, "k": 2}]})
        still_alive = client.post("/predictions/ranker", json={"instances": [{"user_id": 2}]})

    assert ok.status_code == 200 and len(ok.json()["predictions"]) == 2
    assert ok.headers["content-type"] == "application/json" and b"\n" not in ok.content  # the handler's bytes
    assert as_text.status_code == 200 and as_text.json() == ok.json()
    assert bad.status_code == 400
    assert bad.json() == {"code": 400, "type": "InputError",
                          "message": "instances[0]: expected 64 numbers (an 8x8 image), got 63"}
    assert bad.reason_phrase == "instances[0]: expected 64 numbers (an 8x8 image), got 63"
    assert broken.status_code == 400 and broken.json()["message"].startswith("request body is not valid JSON")
    assert kserve_route.status_code == 200 and len(kserve_route.json()["predictions"][0]["items"]) == 2
    assert still_alive.status_code == 200


def test_a_burst_is_batched_and_bad_requests_do_not_fail_their_batch(torchserve: str) -> None:
    bodies: list[dict[str, Any]] = [
        {"instances": [BLANK[:60]]} if i % 4 == 0 else {"instances": [BLANK] * (i % 3 + 1)} for i in range(24)
    ]

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=torchserve, timeout=30) as client:
            return await asyncio.gather(*[client.post("/predictions/digits", json=body) for body in bodies])

    for i, response in enumerate(asyncio.run(burst())):
        if i % 4 == 0:
            assert response.status_code == 400, response.text
        else:
            assert response.status_code == 200, response.text
            assert len(response.json()["predictions"]) == i % 3 + 1


def test_hostile_bodies_get_a_normal_400(torchserve: str) -> None:
    """A JSON integer over 4300 digits (TorchServe's worker then forwards the raw bytes) and a 150 KB key."""
    huge_int = b'{"instances": [[' + b"9" * 5000 + b"]]}"
    with httpx.Client(base_url=torchserve, timeout=30) as client:
        responses = [
            client.post("/predictions/digits", content=huge_int, headers={"content-type": content_type})
            for content_type in ("application/json", "text/plain", "application/octet-stream")
        ]
        long_key = client.post("/predictions/digits", json={"instances": [BLANK], "k" * 150_000: 1})
        still_alive = client.post("/predictions/digits", json={"instances": [BLANK]})

    for response in responses:
        assert response.status_code == 400, response.text
        assert "integers may have at most 4300 digits" in response.json()["message"]
    assert long_key.status_code == 400, long_key.text[:300]
    assert long_key.json()["message"] == f'unknown top-level field "{"k" * 64}\u2026" (allowed: instances)'
    assert long_key.reason_phrase == f'unknown top-level field "{"k" * 64}..." (allowed: instances)'
    assert still_alive.status_code == 200
