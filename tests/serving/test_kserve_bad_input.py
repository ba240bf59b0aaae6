"""Bad input against a real KServe ModelServer on loopback (the start path of ``aip serve --runtime kserve``).

The repository API is not served, malformed v2 binary requests get a 400 with the reason, clients that go
away or break HTTP framing are never counted as 5xx, and v2 model metadata lists the tensors.
"""

from __future__ import annotations

import json
import re
import socket
import struct
import time

import httpx
import numpy as np
import pytest

from infra.serving.kserve_process import KServeServer
from tests.handlers.test_kserve_guard import CASES, REPOSITORY_ROUTES, binary_request, image_input

pytestmark = pytest.mark.integration

IMAGE = np.zeros((1, 64), dtype=np.float32)
V1_BODY = json.dumps({"instances": [[0] * 64]})
_SAMPLE = re.compile(r'^aip_inference_requests_total\{(?P<labels>[^}]*)\} (?P<value>\S+)$', re.M)


def client() -> httpx.Client:
    return httpx.Client(timeout=30, trust_env=False)


def counted(kserve: KServeServer, model: str) -> dict[str, float]:
    """``aip_inference_requests_total`` of ``model`` by code, scraped from the server's /metrics."""
    with client() as http:
        text = http.get(kserve.metrics_url()).text
    found = {}
    for match in _SAMPLE.finditer(text):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group("labels")))
        if labels.get("model_name") == model:
            found[labels["code"]] = float(match.group("value"))
    return found


def still_serving(kserve: KServeServer) -> None:
    with client() as http:
        answer = http.post(kserve.v1_url("digits"), content=V1_BODY, headers={"content-type": "application/json"})
    assert answer.status_code == 200, answer.text
    assert kserve.ready()


def test_the_repository_api_answers_404_and_the_model_keeps_serving(kserve: KServeServer):
    with client() as http:
        for path in REPOSITORY_ROUTES:
            answer = http.post(kserve.base_url + path)
            assert answer.status_code in (404, 405), (path, answer.status_code, answer.text)
        assert http.get(kserve.base_url + "/v2/repository/index").status_code in (404, 405)
    still_serving(kserve)


def test_malformed_binary_requests_get_a_400_with_the_reason(kserve: KServeServer):
    with client() as http:
        for name, (body, headers), words in CASES:
            answer = http.post(kserve.v2_url("digits"), content=body, headers=headers)
            assert answer.status_code == 400, (name, answer.status_code, answer.text)
            assert words in answer.json()["error"], (name, answer.text)
        body, headers = binary_request([image_input()], IMAGE.tobytes())
        good = http.post(kserve.v2_url("digits"), content=body, headers=headers)
        assert good.status_code == 200, good.text
    still_serving(kserve)


def test_v2_model_metadata_lists_inputs_and_outputs(kserve: KServeServer):
    with client() as http:
        meta = http.get(f"{kserve.base_url}/v2/models/digits").json()
    assert meta["inputs"] == [{"name": "image", "datatype": "FP32", "shape": [-1, 64]}]
    assert [(o["name"], o["datatype"]) for o in meta["outputs"]] == [("label", "INT64"), ("probabilities", "FP32")]


def _raw_exchange(kserve: KServeServer, data: bytes, *, read: bool) -> bytes:
    """Send raw bytes, read the answer if asked, then reset the connection.

    The reset (SO_LINGER 0) leaves no TIME_WAIT on the server's port, which the fixture checks is free
    once the server has stopped.
    """
    with socket.create_connection(("127.0.0.1", kserve.port), timeout=10) as raw:
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        raw.sendall(data)
        if not read:
            return b""
        answer = b""
        while chunk := raw.recv(4096):
            answer += chunk
        return answer


def test_aborted_uploads_and_bad_chunking_are_never_counted_as_5xx(kserve: KServeServer):
    before = counted(kserve, "digits")
    path = "/v1/models/digits:predict"
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    # The upload stops halfway and the client hangs up.
    _raw_exchange(kserve, (head + "Content-Length: 1000\r\n\r\n").encode() + b'{"instances": [[0, 0', read=False)
    # Broken chunked encoding: uvicorn itself answers 400 and drops the connection.
    answer = _raw_exchange(kserve, (head + "Transfer-Encoding: chunked\r\n\r\n").encode()
                           + b"5\r\n{\"ins\r\nzz\r\nxx\r\n", read=True)
    assert answer.startswith(b"HTTP/1.1 400"), answer[:100]
    # The same on the v2 binary route, which the guard reads itself.
    v2_head = ("POST /v2/models/digits/infer HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\n"
               "Inference-Header-Content-Length: 10\r\nContent-Length: 500\r\n\r\n")
    _raw_exchange(kserve, v2_head.encode() + b"{\"inputs\"", read=False)
    deadline = time.monotonic() + 10
    while True:
        after = counted(kserve, "digits")
        gone = after.get("499", 0) - before.get("499", 0)
        if gone >= 3 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert not [code for code in after if code.startswith("5")], after
    assert gone == 3, (before, after)
    still_serving(kserve)


def test_versions_are_a_404_and_server_metadata_has_no_repository_extension(kserve: KServeServer):
    before = counted(kserve, "digits")
    with client() as http:
        body, headers = binary_request([image_input()], IMAGE.tobytes())
        versioned = http.post(f"{kserve.base_url}/v2/models/digits/versions/1/infer", content=body, headers=headers)
        unknown = http.post(f"{kserve.base_url}/v2/models/nope/infer", content=body[:-4], headers=headers)
        meta = http.get(f"{kserve.base_url}/v2")
    assert versioned.status_code == 404 and "/v2/models/digits/infer" in versioned.json()["error"]
    assert unknown.status_code == 404, unknown.text
    assert meta.status_code == 200 and "model_repository_extension" not in meta.json()["extensions"]
    after = counted(kserve, "digits")
    assert after.get("404", 0) - before.get("404", 0) == 1 and not [c for c in after if c.startswith("5")]
    still_serving(kserve)
