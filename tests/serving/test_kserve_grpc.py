"""gRPC v2 against a real KServe ModelServer on loopback (the start path of ``aip serve --runtime kserve``).

``ModelInfer`` answers what REST v1 answers; the repository RPCs are refused, model versions are
NOT_FOUND, malformed requests INVALID_ARGUMENT with the reason and the server keeps serving; every call
is counted in ``aip_inference_requests_total`` by the HTTP status of the same meaning; gRPC listens on
127.0.0.1 only. The rules one by one, in-process: tests/handlers/test_kserve_grpc_guard.py.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import grpc
import httpx
import numpy as np
import pytest

from infra.serving.kserve_process import GRPC_SERVICE, KServeServer, grpc_v2
from tests.serving.conftest import LOOPBACK_HOSTS, group_pids, listening
from tests.serving.test_kserve import ZERO
from tests.serving.test_kserve_bad_input import counted

pytestmark = pytest.mark.integration

IMAGES = np.stack([np.array(ZERO), np.arange(64) % 17]).astype(np.float32)


def infer_request(raw: list[bytes] | None = None, **fields: Any) -> Any:
    messages, _ = grpc_v2()
    image = messages.ModelInferRequest.InferInputTensor(name="image", shape=list(IMAGES.shape), datatype="FP32")
    request = {"model_name": "digits", "inputs": [image], **fields}
    return messages.ModelInferRequest(raw_input_contents=[IMAGES.tobytes()] if raw is None else raw, **request)


def call(kserve: KServeServer, method: str, request: Any) -> tuple[str, Any]:
    """``("OK", response)`` or ``(status name, details)`` of one RPC."""
    _, stubs = grpc_v2()
    stub = stubs.GRPCInferenceServiceStub(kserve.grpc_channel())
    try:
        return "OK", getattr(stub, method)(request, timeout=30)
    except grpc.RpcError as err:
        return err.code().name, err.details()


def test_model_infer_with_raw_fp32_answers_what_rest_v1_answers(kserve: KServeServer):
    from kserve.protocol.infer_type import InferResponse

    with httpx.Client(timeout=30, trust_env=False) as http:
        v1 = http.post(kserve.v1_url("digits"), json={"instances": IMAGES.tolist()})
    assert v1.status_code == 200, v1.text
    code, response = call(kserve, "ModelInfer", infer_request(id="grpc-1"))
    assert code == "OK", response
    assert response.id == "grpc-1" and response.model_name == "digits"
    assert response.model_version == next(m.package.version for m in kserve.models if m.name == "digits")
    outputs = {o.name: o.as_numpy() for o in InferResponse.from_grpc(response).outputs}
    predictions = v1.json()["predictions"]
    assert outputs["label"].tolist() == [p["label"] for p in predictions]
    assert outputs["label"][0] == 0
    expected = [p["probabilities"] for p in predictions]
    np.testing.assert_allclose(outputs["probabilities"], expected, rtol=1e-5, atol=1e-5)


def test_repository_rpcs_are_refused_and_versions_are_not_found(kserve: KServeServer):
    messages, _ = grpc_v2()
    for method, request in (("RepositoryModelUnload", messages.RepositoryModelUnloadRequest(model_name="digits")),
                            ("RepositoryModelLoad", messages.RepositoryModelLoadRequest(model_name="digits"))):
        code, details = call(kserve, method, request)
        assert code == "UNIMPLEMENTED" and "model repository API is not served" in details, (method, code, details)
    for method, request in (("ModelInfer", infer_request(model_version="1")),
                            ("ModelReady", messages.ModelReadyRequest(name="digits", version="1")),
                            ("ModelMetadata", messages.ModelMetadataRequest(name="digits", version="1"))):
        code, details = call(kserve, method, request)
        assert code == "NOT_FOUND" and "model versions are not served" in details, (method, code, details)
    code, metadata = call(kserve, "ServerMetadata", messages.ServerMetadataRequest())
    assert code == "OK" and "model_repository_extension" not in metadata.extensions
    assert kserve.grpc_ready() and kserve.ready()


def test_malformed_raw_contents_are_invalid_argument_and_the_server_keeps_serving(kserve: KServeServer):
    messages, _ = grpc_v2()
    cases = [
        (infer_request(raw=[IMAGES.tobytes()[:-4]]), "needs 512 bytes of raw_input_contents, got 508"),
        (infer_request(raw=[IMAGES.tobytes(), b"\0" * 4]), "1 inputs and 2 raw_input_contents"),
        (infer_request(raw=[b"\0" * 3]), "got 3"),
        (messages.ModelInferRequest(model_name="digits", inputs=[messages.ModelInferRequest.InferInputTensor(
            name="image", shape=[-2, 64], datatype="FP32")], raw_input_contents=[IMAGES.tobytes()]),
         "shape must be non-negative"),
    ]
    for request, words in cases:
        code, details = call(kserve, "ModelInfer", request)
        assert code == "INVALID_ARGUMENT" and words in details, (words, code, details)
    undecodable = kserve.grpc_channel().unary_unary(f"/{GRPC_SERVICE}/ModelInfer")
    with pytest.raises(grpc.RpcError) as caught:
        undecodable(b"\xff\xff", timeout=30)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert call(kserve, "ModelInfer", infer_request())[0] == "OK"
    assert kserve.ready()


def test_the_counter_shows_grpc_calls_by_http_status(kserve: KServeServer):
    before = counted(kserve, "digits")
    image = grpc_v2()[0].ModelInferRequest.InferInputTensor(name="pixels", shape=[1, 64], datatype="FP32")
    answers = [call(kserve, "ModelInfer", request)[0] for request in (
        infer_request(),
        infer_request(raw=[b"\0"]),
        infer_request(model_version="2"),
        grpc_v2()[0].ModelInferRequest(model_name="digits", inputs=[image], raw_input_contents=[IMAGES[:1].tobytes()]),
        infer_request(model_name="nope"),
    )]
    assert answers == ["OK", "INVALID_ARGUMENT", "NOT_FOUND", "INVALID_ARGUMENT", "NOT_FOUND"]
    after = counted(kserve, "digits")
    delta = {code: after.get(code, 0) - before.get(code, 0) for code in after}
    assert {code: n for code, n in delta.items() if n} == {"200": 1, "400": 2, "404": 1}
    assert not [c for c in after if c.startswith("5")]


def test_grpc_listens_on_loopback_only_and_is_listed_with_the_endpoints(kserve: KServeServer):
    pgid = kserve.process_group()
    assert pgid is not None
    sockets = listening(group_pids(pgid))
    assert {host for host, port in sockets if port == kserve.grpc_port} <= LOOPBACK_HOSTS
    assert kserve.grpc_target == f"127.0.0.1:{kserve.grpc_port}"
    grpc_endpoints = [e for e in kserve.endpoints() if e.method == "gRPC"]
    assert {(e.model, e.url) for e in grpc_endpoints} == {(m.name, kserve.grpc_target) for m in kserve.models}
    assert json.loads((kserve.work_dir / "kserve-spec.json").read_text())["grpc_port"] == kserve.grpc_port


def test_a_bytes_tensor_of_bad_lengths_is_refused(kserve: KServeServer):
    messages, _ = grpc_v2()
    users = messages.ModelInferRequest.InferInputTensor(name="user_id", shape=[1], datatype="BYTES")
    request = messages.ModelInferRequest(model_name="ranker", inputs=[users],
                                         raw_input_contents=[struct.pack("<I", 50) + b"7"])
    code, details = call(kserve, "ModelInfer", request)
    assert code == "INVALID_ARGUMENT" and "says 50 bytes" in details
