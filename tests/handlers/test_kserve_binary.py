"""The v2 binary tensor extension on KServe 0.16's own REST routes, in-process: binary inputs reach the model as
arrays over the request's bytes (never Python lists), and outputs go back as raw bytes when the request asks.

The same against a real ModelServer on loopback: tests/serving/test_kserve_binary.py.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, Mapping
from typing import Any

import httpx
import numpy as np
import pytest

from tests.handlers.test_kserve_model import loaded, rest_app

pytestmark = pytest.mark.filterwarnings("ignore:ORJSONResponse is deprecated")

V2_DATATYPES = {"FP32": np.float32, "FP64": np.float64, "INT64": np.int64, "INT32": np.int32, "UINT8": np.uint8,
                "BOOL": np.bool_}


def binary_body(inputs: Mapping[str, np.ndarray], *, outputs: list[dict[str, Any]] | None = None,
                parameters: dict[str, Any] | None = None,
                request_id: str | None = None) -> tuple[bytes, dict[str, str]]:
    """A v2 binary-extension request built by hand: a JSON header giving each input's ``binary_data_size``,
    then every input's raw little-endian bytes, back to back in the header's order."""
    datatypes = {np.dtype(dtype): name for name, dtype in V2_DATATYPES.items()}
    header: dict[str, Any] = {"inputs": [
        {"name": name, "shape": list(array.shape), "datatype": datatypes[array.dtype],
         "parameters": {"binary_data_size": array.nbytes}} for name, array in inputs.items()]}
    if request_id is not None:
        header["id"] = request_id
    if outputs is not None:
        header["outputs"] = outputs
    if parameters is not None:
        header["parameters"] = parameters
    head = json.dumps(header).encode()
    raw = b"".join(np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()
                   for array in inputs.values())
    return head + raw, {"content-type": "application/octet-stream", "inference-header-content-length": str(len(head))}


def parse_binary_response(response: httpx.Response) -> tuple[dict[str, Any], dict[str, np.ndarray], set[str]]:
    """The JSON part, every output as an array, and the names of the outputs that came as raw bytes."""
    length = int(response.headers["inference-header-content-length"])
    header = json.loads(response.content[:length])
    offset, arrays, binary = length, {}, set()
    for output in header["outputs"]:
        dtype = np.dtype(V2_DATATYPES[output["datatype"]]).newbyteorder("<")
        size = (output.get("parameters") or {}).get("binary_data_size")
        if size is None:
            arrays[output["name"]] = np.asarray(output["data"], dtype=dtype).reshape(output["shape"])
            continue
        arrays[output["name"]] = np.frombuffer(response.content[offset:offset + size], dtype=dtype).reshape(
            output["shape"])
        binary.add(output["name"])
        offset += size
    assert offset == len(response.content), "bytes left after the last binary output"
    return header, arrays, binary


@pytest.fixture
def raw_inputs() -> Iterator[None]:
    """``keep_binary_inputs_raw`` for one test (``KServeModel.start`` installs it for a real server)."""
    from aip_serving.kserve import keep_binary_inputs_raw
    from kserve.protocol.infer_type import InferRequest

    original = InferRequest.__dict__["from_bytes"]
    keep_binary_inputs_raw()
    yield
    InferRequest.from_bytes = original


@pytest.fixture(scope="module")
def models(digits_trained: Any, ranker_trained: Any) -> dict[str, Any]:
    return {"digits": loaded(digits_trained), "ranker": loaded(ranker_trained)}


def post_all(models: dict[str, Any], requests: list[tuple[str, bytes, dict[str, str]]]) -> list[httpx.Response]:
    async def exchange() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=rest_app(*models.values()))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return [await client.post(f"/v2/models/{model}/infer", content=body, headers=headers)
                    for model, body, headers in requests]

    return asyncio.run(exchange())


class Spy:
    """Wraps a core's ``decode_tensors`` to keep the arrays the model was handed."""

    def __init__(self, core: Any) -> None:
        self.core, self.seen = core, []
        self.original = core.decode_tensors

    def __call__(self, tensors: Mapping[str, np.ndarray]) -> Any:
        self.seen.append(dict(tensors))
        return self.original(tensors)


@pytest.fixture
def digits_spy(models: dict[str, Any]) -> Iterator[Spy]:
    core = models["digits"].core
    spy = Spy(core)
    core.decode_tensors = spy
    yield spy
    del core.decode_tensors


def test_binary_inputs_reach_the_model_as_arrays_over_the_request_bytes(models: dict[str, Any], raw_inputs: None,
                                                                        digits_spy: Spy) -> None:
    image = (np.arange(3 * 64).reshape(3, 64) % 17).astype(np.float32)
    body, headers = binary_body({"image": image}, request_id="bin-1", parameters={"binary_data_output": True})
    (answer,) = post_all(models, [("digits", body, headers)])
    assert answer.status_code == 200, answer.text
    (tensors,) = digits_spy.seen
    # np.frombuffer over the body's bytes is read-only; a list round trip builds a fresh, writeable array.
    assert not tensors["image"].flags.writeable
    header, arrays, binary = parse_binary_response(answer)
    assert header["id"] == "bin-1" and binary == {"label", "probabilities"}
    expected = models["digits"].core.predict(image.tolist())
    assert arrays["label"].tolist() == [p["label"] for p in expected]
    assert arrays["probabilities"] == pytest.approx(np.array([p["probabilities"] for p in expected]), abs=1e-5)


def test_kserve_alone_turns_binary_inputs_into_python_lists(models: dict[str, Any], digits_spy: Spy) -> None:
    """Why keep_binary_inputs_raw exists: KServe 0.16's own decoding rebuilds the array from a list."""
    from kserve.protocol.infer_type import InferRequest

    assert InferRequest.__dict__["from_bytes"].__func__.__module__.startswith("kserve")
    body, headers = binary_body({"image": np.zeros((1, 64), dtype=np.float32)})
    (answer,) = post_all(models, [("digits", body, headers)])
    assert answer.status_code == 200
    assert digits_spy.seen[0]["image"].flags.writeable


def test_outputs_are_json_unless_asked_and_each_may_choose(models: dict[str, Any], raw_inputs: None) -> None:
    users = np.array([3, 4], dtype=np.int64)
    k = np.array([5], dtype=np.int64)
    plain = binary_body({"user_id": users, "k": k})
    mixed = binary_body({"user_id": users, "k": k}, parameters={"binary_data_output": True},
                        outputs=[{"name": "scores", "parameters": {"binary_data": False}}, {"name": "items"}])
    only_items = binary_body({"user_id": users, "k": k},
                             outputs=[{"name": "items", "parameters": {"binary_data": True}}])
    json_answer, mixed_answer, items_answer = post_all(models, [("ranker", *plain), ("ranker", *mixed),
                                                                ("ranker", *only_items)])
    assert json_answer.status_code == 200 and "inference-header-content-length" not in json_answer.headers
    outputs = {o["name"]: o for o in json_answer.json()["outputs"]}
    assert set(outputs) == {"items", "scores"} and outputs["items"]["shape"] == [2, 5]

    header, arrays, binary = parse_binary_response(mixed_answer)
    assert [o["name"] for o in header["outputs"]] == ["scores", "items"]  # the request's order
    assert binary == {"items"}  # binary_data_output for all, except where an output says otherwise
    assert arrays["items"].reshape(-1).tolist() == outputs["items"]["data"]  # JSON data is flattened
    assert arrays["scores"].reshape(-1).tolist() == pytest.approx(outputs["scores"]["data"], abs=1e-6)

    header, arrays, binary = parse_binary_response(items_answer)
    assert [o["name"] for o in header["outputs"]] == ["items"] and binary == {"items"}
    assert arrays["items"].shape == (2, 5) and arrays["items"].dtype == np.int64


@pytest.mark.parametrize(("extra", "message"), [
    ({"outputs": [{"name": "ranking"}]}, 'unknown output "ranking" requested (outputs: items, scores)'),
    ({"outputs": [{"name": "items", "parameters": {"binary_data": "yes"}}]},
     'output "items": parameters.binary_data must be true or false, got string'),
    ({"parameters": {"binary_data_output": 1}}, "parameters.binary_data_output must be true or false, got number"),
])
def test_bad_output_requests_are_a_400(models: dict[str, Any], raw_inputs: None, extra: dict[str, Any],
                                       message: str) -> None:
    body, headers = binary_body({"user_id": np.array([1])}, **extra)
    (answer,) = post_all(models, [("ranker", body, headers)])
    assert answer.status_code == 400
    assert answer.json() == {"error": message}


def test_binary_data_that_does_not_fit_its_shape_is_a_400_even_without_the_guard(models: dict[str, Any],
                                                                                  raw_inputs: None) -> None:
    header = json.dumps({"inputs": [{"name": "image", "shape": [1, 64], "datatype": "FP32",
                                     "parameters": {"binary_data_size": 12}}]}).encode()
    (answer,) = post_all(models, [("digits", header + bytes(12), {
        "content-type": "application/octet-stream", "inference-header-content-length": str(len(header))})])
    assert answer.status_code == 400
    assert answer.json()["error"].startswith('input "image": data does not fit shape [1, 64] and datatype FP32')


def test_json_v2_requests_still_answer_json(models: dict[str, Any], raw_inputs: None) -> None:
    request = {"inputs": [{"name": "image", "shape": [1, 64], "datatype": "FP32", "data": [0.0] * 64}]}
    (answer,) = post_all(models, [("digits", json.dumps(request).encode(), {"content-type": "application/json"})])
    assert answer.status_code == 200
    assert {o["name"]: len(o["data"]) for o in answer.json()["outputs"]} == {"label": 1, "probabilities": 10}


def test_requested_outputs_decides_which_outputs_and_how() -> None:
    from aip_serving.kserve import requested_outputs
    from kserve.protocol.infer_type import InferInput, InferRequest, RequestedOutput

    outputs = {"items": np.int64, "scores": np.float32}

    def request(parameters: Any = None, wanted: Any = None, *, grpc: bool = False) -> Any:
        inputs = [InferInput("user_id", [1], "INT64")]
        return InferRequest("ranker", inputs, parameters=parameters, from_grpc=grpc,
                            raw_inputs=[np.array([1]).tobytes()] if grpc else None,
                            request_outputs=[RequestedOutput(n, p) for n, p in wanted] if wanted else None)

    assert requested_outputs(request(), outputs) == {"items": False, "scores": False}
    assert requested_outputs(request({"binary_data_output": True}), outputs) == {"items": True, "scores": True}
    assert requested_outputs(request(wanted=[("scores", None), ("items", {"binary_data": True})]), outputs) == {
        "scores": False, "items": True}
    # Over gRPC raw inputs mean raw outputs, all of them: a REST per-output flag does not split them.
    assert requested_outputs(request(wanted=[("items", {"binary_data": False})], grpc=True), outputs) == {
        "items": True}
