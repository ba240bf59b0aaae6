"""Bad input on KServe 0.16's own REST routes, in-process, with the runtime's guard and counter installed
as ``KServeModel.start`` installs them: the repository API refused, malformed v2 binary requests a 400
with the reason, clients that go away counted 499 (never 5xx), and v2 model metadata listing tensors.

The same against a real ModelServer on loopback: tests/serving/test_kserve_bad_input.py.
"""

from __future__ import annotations

import asyncio
import json
import struct
from typing import Any

import fastapi
import httpx
import numpy as np
import pytest

from tests.handlers.conftest import Trained
from tests.handlers.test_kserve_metrics import samples
from tests.handlers.test_kserve_model import BLANK, loaded, rest_app

# kserve 0.16 answers with ORJSONResponse, which the installed FastAPI deprecates.
pytestmark = pytest.mark.filterwarnings("ignore:ORJSONResponse is deprecated")

IMAGE = np.zeros((1, 64), dtype=np.float32)
V1_BODY = json.dumps({"instances": [BLANK]}).encode()


def binary_request(inputs: list[dict[str, Any]], raw: bytes, *, length: Any = None,
                   extra: dict[str, Any] | None = None) -> tuple[bytes, dict[str, str]]:
    """A v2 binary-extension request: JSON header, raw data; ``length`` overrides the header's value."""
    header = json.dumps({"inputs": inputs, **(extra or {})}).encode()
    value = str(len(header)) if length is None else str(length)
    return header + raw, {"content-type": "application/octet-stream", "inference-header-content-length": value}


def image_input(size: Any = 256, shape: Any = (1, 64), datatype: str = "FP32") -> dict[str, Any]:
    return {"name": "image", "shape": list(shape) if isinstance(shape, tuple) else shape, "datatype": datatype,
            "parameters": {"binary_data_size": size}}


def bytes_tensor(*items: bytes) -> bytes:
    return b"".join(struct.pack("<I", len(item)) + item for item in items)


# (what is wrong, body and headers, words of the expected message)
GOOD_HEADER = json.dumps({"inputs": [image_input()]}).encode()
MALFORMED: list[tuple[str, tuple[bytes, dict[str, str]], str]] = [
    ("negative header", binary_request([image_input()], IMAGE.tobytes(), length=-5), "non-negative integer"),
    ("non-numeric header", binary_request([image_input()], IMAGE.tobytes(), length="abc"), "non-negative integer"),
    ("float header", binary_request([image_input()], IMAGE.tobytes(), length="12.5"), "non-negative integer"),
    ("header longer than the body", binary_request([image_input()], IMAGE.tobytes(), length=10**6),
     "the body has only"),
    ("header too short", binary_request([image_input()], IMAGE.tobytes(), length=10), "not a JSON object"),
    ("header cuts the raw data", (GOOD_HEADER + IMAGE.tobytes(),
                                  {"content-type": "application/octet-stream",
                                   "inference-header-content-length": str(len(GOOD_HEADER) + 3)}),
     "not a JSON object"),
    ("size not matching the shape", binary_request([image_input(size=12)], IMAGE.tobytes()[:12]), "needs 256 bytes"),
    ("size a string", binary_request([image_input(size="256")], IMAGE.tobytes()), "binary_data_size must be"),
    ("size a float", binary_request([image_input(size=256.0)], IMAGE.tobytes()), "binary_data_size must be"),
    ("size negative", binary_request([image_input(size=-4)], IMAGE.tobytes()), "binary_data_size must be"),
    ("size null", binary_request([image_input(size=None)], IMAGE.tobytes()), "binary_data_size must be"),
    ("body shorter than the sizes", binary_request([image_input()], IMAGE.tobytes()[:100]), "runs past the end"),
    ("trailing bytes", binary_request([image_input()], IMAGE.tobytes() + b"xx"), "add up to 256"),
    ("BYTES with raw floats", binary_request([image_input(size=256, datatype="BYTES")],
                                             np.arange(1, 65, dtype=np.float32).tobytes()), "BYTES element 0"),
    ("BYTES with floats", binary_request([image_input(size=8, shape=(1, 2), datatype="BYTES")],
                                         np.array([1.5, 2.5], dtype=np.float32).tobytes()), "BYTES element"),
    ("BYTES count", binary_request([image_input(size=10, shape=(1, 2), datatype="BYTES")],
                                   bytes_tensor(b"abcdef")), "2 BYTES elements"),
    ("BYTES not UTF-8", binary_request([image_input(size=6, shape=(1,), datatype="BYTES")],
                                       bytes_tensor(b"\xff\xfe")), "not UTF-8"),
    ("unknown datatype", binary_request([image_input(datatype="FLOAT")], IMAGE.tobytes()), '"datatype" must be'),
    ("shape not a list", binary_request([image_input(shape="1x64")], IMAGE.tobytes()), '"shape" must be'),
    ("negative dimension", binary_request([image_input(shape=(-1, 64))], IMAGE.tobytes()), '"shape" must be'),
    ("no inputs", binary_request([], b""), '"inputs" must be'),
    ("input not an object", binary_request(["image"], b""), "must be an object"),
    ("no name", binary_request([{"shape": [1], "datatype": "FP32", "parameters": {"binary_data_size": 4}}],
                               b"\0\0\0\0"), '"name" must be'),
    ("neither data nor size", binary_request([{"name": "image", "shape": [1, 64], "datatype": "FP32"}], b""),
     "neither"),
    ("id a number", binary_request([image_input()], IMAGE.tobytes(), extra={"id": 5}), '"id" must be'),
    ("parameters a list", binary_request([image_input()], IMAGE.tobytes(), extra={"parameters": []}),
     '"parameters" must be'),
    ("outputs not a list", binary_request([image_input()], IMAGE.tobytes(), extra={"outputs": "label"}),
     '"outputs" must be'),
    ("header not JSON", (b"\xff\xfe" + IMAGE.tobytes(), {"content-type": "application/octet-stream",
                                                         "inference-header-content-length": "2"}),
     "not a JSON object"),
    ("JSON not an object", (b"[1]", {"content-type": "application/octet-stream",
                                     "inference-header-content-length": "3"}), "must be an object"),
    ("binary without the header", (GOOD_HEADER + IMAGE.tobytes(), {"content-type": "application/octet-stream"}),
     "Inference-Header-Content-Length"),
    ("differing repeated headers", None, "more than once"),
]


def _fix(case: tuple[str, Any, str]) -> tuple[str, tuple[bytes, list[tuple[str, str]]], str]:
    name, request, words = case
    if name == "differing repeated headers":
        body, headers = binary_request([image_input()], IMAGE.tobytes())
        return name, (body, [("content-type", "application/octet-stream"),
                             ("inference-header-content-length", headers["inference-header-content-length"]),
                             ("inference-header-content-length", "7")]), words
    body, headers = request
    return name, (body, list(headers.items())), words


CASES = [_fix(case) for case in MALFORMED]


def guarded_app(*models: Any, counter: Any = None) -> fastapi.FastAPI:
    """KServe's routes and handlers with the guard and then the counter, the order ``KServeModel.start`` uses."""
    from aip_serving.guard import guard_requests
    from aip_serving.metrics import count_requests

    app = rest_app(*models)
    for model in models:
        assert guard_requests(app, model.name)
        assert count_requests(app, model.name, counter=counter)
    return app


@pytest.fixture(scope="module")
def digits_served(digits_trained: Trained) -> Any:
    return loaded(digits_trained)


@pytest.fixture(scope="module")
def ranker_served(ranker_trained: Trained) -> Any:
    return loaded(ranker_trained)


def exchange(app: fastapi.FastAPI, requests: list[tuple[str, str, dict[str, Any]]]) -> list[httpx.Response]:
    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return [await client.request(method, path, **kwargs) for method, path, kwargs in requests]

    return asyncio.run(run())


REPOSITORY_ROUTES = [
    "/v2/repository/models/digits/unload",
    "/v2/repository/models/digits/load",
    "/v2/repository/index",
    "/v2/repository/models/digits/unload/",
    "//v2//repository/models/digits/unload",
    "/V2/Repository/models/digits/unload",
    "/v1/repository/models/digits/unload",
]


def test_the_repository_api_is_not_served_and_the_model_keeps_serving(digits_served: Any) -> None:
    app = guarded_app(digits_served)
    answers = exchange(app, [("POST", path, {}) for path in REPOSITORY_ROUTES]
                       + [("GET", "/v2/repository/index", {}),
                          ("POST", "/v1/models/digits:predict", {"content": V1_BODY}),
                          ("GET", "/v2/models/digits/ready", {})])
    *refused, predicted, ready = answers
    assert [answer.status_code for answer in refused] == [404] * (len(REPOSITORY_ROUTES) + 1)
    assert "repository API is not served" in refused[0].json()["error"]
    assert predicted.status_code == 200 and ready.status_code == 200


def test_kserve_alone_would_unload_the_model(digits_trained: Trained) -> None:
    """What the guard stops: KServe 0.16's own app answers unload with 200 and the model is gone."""
    model = loaded(digits_trained)
    unload, predict = exchange(rest_app(model), [("POST", "/v2/repository/models/digits/unload", {}),
                                                 ("POST", "/v1/models/digits:predict", {"content": V1_BODY})])
    assert unload.status_code == 200 and predict.status_code == 404


@pytest.mark.parametrize(("name", "request_", "words"), CASES, ids=[case[0] for case in CASES])
def test_a_malformed_binary_request_is_a_400_with_the_reason(digits_served: Any, name: str,
                                                             request_: tuple[bytes, list[tuple[str, str]]],
                                                             words: str) -> None:
    body, headers = request_
    answer, good = exchange(guarded_app(digits_served), [
        ("POST", "/v2/models/digits/infer", {"content": body, "headers": headers}),
        ("POST", "/v2/models/digits/infer", {"content": binary_request([image_input()], IMAGE.tobytes())[0],
                                             "headers": binary_request([image_input()], IMAGE.tobytes())[1]}),
    ])
    assert answer.status_code == 400, (name, answer.text)
    assert words in answer.json()["error"], answer.json()
    assert good.status_code == 200, good.text


def test_kserve_alone_answers_malformed_binary_requests_with_500(digits_served: Any) -> None:
    """What the guard stops: these reach KServe's decoding and come back as 500."""
    picked = {"non-numeric header", "size not matching the shape", "BYTES with floats", "size a string"}
    answers = exchange(rest_app(digits_served), [("POST", "/v2/models/digits/infer", {"content": r[0], "headers": r[1]})
                                          for name, r, _ in CASES if name in picked])
    assert [answer.status_code for answer in answers] == [500] * len(picked)


def test_well_formed_binary_and_json_without_content_type_are_served(digits_served: Any, ranker_served: Any) -> None:
    users = np.array([1, 2], dtype=np.int64)
    ranker_body, ranker_headers = binary_request(
        [{"name": "user_id", "shape": [2], "datatype": "INT64", "parameters": {"binary_data_size": 16}},
         {"name": "k", "shape": [1], "datatype": "INT64", "data": [3]},
         {"name": "exclude_seen", "shape": [1], "datatype": "BOOL", "parameters": {"binary_data_size": 1}}],
        users.tobytes() + b"\x01")
    json_body = json.dumps({"inputs": [{"name": "image", "shape": [1, 64], "datatype": "FP32", "data": BLANK}]})
    image, ranked, plain, plain_broken = exchange(guarded_app(digits_served, ranker_served), [
        ("POST", "/v2/models/digits/infer", {"content": binary_request([image_input()], IMAGE.tobytes())[0],
                                             "headers": binary_request([image_input()], IMAGE.tobytes())[1]}),
        ("POST", "/v2/models/ranker/infer", {"content": ranker_body, "headers": ranker_headers}),
        ("POST", "/v2/models/digits/infer", {"content": json_body.encode()}),  # no content type: JSON
        ("POST", "/v2/models/digits/infer", {"content": b"{"}),
    ])
    assert image.status_code == 200 and image.json()["outputs"][0]["shape"] == [1]
    assert ranked.status_code == 200 and {o["name"]: o["shape"] for o in ranked.json()["outputs"]} == {
        "items": [2, 3], "scores": [2, 3]}
    assert plain.status_code == 200, plain.text
    assert plain_broken.status_code == 422


def test_v2_model_metadata_lists_the_declared_tensors(digits_served: Any, ranker_served: Any) -> None:
    digits_meta, ranker_meta = exchange(guarded_app(digits_served, ranker_served), [("GET", "/v2/models/digits", {}),
                                                                      ("GET", "/v2/models/ranker", {})])
    assert digits_meta.status_code == 200
    assert digits_meta.json()["inputs"] == [{"name": "image", "datatype": "FP32", "shape": [-1, 64]}]
    assert digits_meta.json()["outputs"] == [{"name": "label", "datatype": "INT64", "shape": [-1]},
                                             {"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]}]
    assert ranker_meta.json()["inputs"] == [{"name": "user_id", "datatype": "INT64", "shape": [-1]},
                                            {"name": "k", "datatype": "INT64", "shape": [-1]},
                                            {"name": "exclude_seen", "datatype": "BOOL", "shape": [-1]}]
    assert ranker_meta.json()["outputs"] == [{"name": "items", "datatype": "INT64", "shape": [-1, -1]},
                                             {"name": "scores", "datatype": "FP32", "shape": [-1, -1]}]


def test_every_model_declares_datatype_and_shape_of_each_tensor(digits_served: Any, ranker_served: Any) -> None:
    for model in (digits_served, ranker_served):
        inputs, outputs = model.core_class.v2_metadata()
        assert [t["name"] for t in inputs] == list(model.core_class.v2_inputs)
        assert [t["name"] for t in outputs] == list(model.core_class.v2_outputs)


async def _call_with_partial_body(app: fastapi.FastAPI, path: str, headers: list[tuple[bytes, bytes]]) -> list[Any]:
    """One request whose body stops halfway, then the connection ends; returns what the app sent."""
    messages = [{"type": "http.request", "body": b'{"inst', "more_body": True}, {"type": "http.disconnect"}]
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"host", b"test"), (b"content-length", b"1000"), *headers],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
    try:
        await app(scope, receive, send)
    except Exception as err:  # what Starlette's outermost middleware would turn into a 500
        sent.append(err)
    return sent


def test_a_client_that_goes_away_is_counted_499_not_500(digits_served: Any) -> None:
    from aip_serving.metrics import requests_counter
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    app = guarded_app(digits_served, counter=requests_counter(registry))
    json_type = [(b"content-type", b"application/json")]
    binary = [(b"content-type", b"application/octet-stream"), (b"inference-header-content-length", b"10")]

    async def run() -> list[list[Any]]:
        return [await _call_with_partial_body(app, "/v1/models/digits:predict", json_type),
                await _call_with_partial_body(app, "/v2/models/digits/infer", json_type),
                await _call_with_partial_body(app, "/v2/models/digits/infer", binary)]

    results = asyncio.run(run())
    assert all(not any(isinstance(m, Exception) for m in sent) for sent in results), results
    assert samples(registry) == {("digits", "499"): 3}


def test_model_versions_are_a_404_naming_the_route_not_kserves_501(digits_served: Any) -> None:
    from aip_serving.metrics import requests_counter
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    app = guarded_app(digits_served, counter=requests_counter(registry))
    json_body = json.dumps({"inputs": [{"name": "image", "shape": [1, 64], "datatype": "FP32", "data": BLANK}]})
    json_type = {"content": json_body.encode(), "headers": {"content-type": "application/json"}}
    alone = exchange(rest_app(digits_served), [("POST", "/v2/models/digits/versions/1/infer", json_type)])
    assert alone[0].status_code == 501  # what the guard stops
    answers = exchange(app, [("POST", "/v2/models/digits/versions/1/infer", json_type),
                             ("POST", "/v2/models/nope/versions/1/infer", json_type),
                             ("GET", "/v2/models/digits/versions/1", {}),
                             ("GET", "/v2/models/digits/versions/1/ready", {})])
    assert [answer.status_code for answer in answers] == [404] * 4, [a.text for a in answers]
    assert "use /v2/models/digits/infer" in answers[0].json()["error"]
    assert samples(registry) == {("digits", "404"): 1}


def test_the_guard_matches_inference_routes_as_kserve_routes_them(digits_served: Any) -> None:
    """Other spellings are KServe's (307 or 404, uncounted); an unknown model's binary request is KServe's 404."""
    from aip_serving.metrics import requests_counter
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    app = guarded_app(digits_served, counter=requests_counter(registry))
    body, headers = binary_request([image_input(size=12)], IMAGE.tobytes()[:12])  # malformed
    request = {"content": body, "headers": headers}
    slash, double, upper, unknown, good_path = exchange(app, [
        ("POST", "/v2/models/digits/infer/", request),
        ("POST", "//v2/models/digits/infer", request),
        ("POST", "/V2/MODELS/DIGITS/INFER", request),
        ("POST", "/v2/models/nope/infer", request),
        ("POST", "/v2/models/digits/infer", request),
    ])
    assert slash.status_code == 307 and slash.headers["location"].endswith("/v2/models/digits/infer")
    assert double.status_code == 404 and upper.status_code == 404
    assert unknown.status_code == 404 and "nope" in unknown.text
    assert good_path.status_code == 400 and "needs 256 bytes" in good_path.json()["error"]
    assert samples(registry) == {("digits", "400"): 1}


def test_server_metadata_does_not_advertise_the_repository_extension(digits_served: Any) -> None:
    (alone,) = exchange(rest_app(digits_served), [("GET", "/v2", {})])
    assert "model_repository_extension" in alone.json()["extensions"]  # what the guard stops
    (meta,) = exchange(guarded_app(digits_served), [("GET", "/v2", {})])
    assert meta.status_code == 200
    assert meta.json()["extensions"] == [] and meta.json()["name"] == alone.json()["name"]
    assert int(meta.headers["content-length"]) == len(meta.content)


@pytest.mark.parametrize(("body", "content_type"), [
    (b'{"inputs": "\xff"}', "application/json"),
    ((b"[" * 20000) + (b"]" * 20000), "application/json"),
    (binary_request([image_input()], np.full((1, 64), 1.5, dtype=np.float32).tobytes())[0], "application/json"),
], ids=["not UTF-8", "nested too deep", "binary sent as JSON"])
def test_a_v2_json_body_kserve_cannot_parse_is_its_400_parsing_error(digits_served: Any, body: bytes,
                                                                    content_type: str) -> None:
    """As the README's table says: FastAPI's own 400, not the 422 of a body that parses but does not validate."""
    answer, invalid = exchange(guarded_app(digits_served), [
        ("POST", "/v2/models/digits/infer", {"content": body, "headers": {"content-type": content_type}}),
        ("POST", "/v2/models/digits/infer", {"content": b"{", "headers": {"content-type": content_type}}),
    ])
    assert answer.status_code == 400, answer.text
    assert answer.json() == {"detail": "There was an error parsing the body"}
    assert invalid.status_code == 422 and isinstance(invalid.json()["detail"], list)
