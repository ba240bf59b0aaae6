"""gRPC v2 in-process: KServe 0.16's servicer behind the runtime's interceptors, on a loopback port.

The same rules as REST (tests/handlers/test_kserve_guard.py): repository RPCs refused, model versions
NOT_FOUND, malformed ``ModelInferRequest``s INVALID_ARGUMENT with what is wrong, and every ``ModelInfer``
of a hosted model counted by the HTTP status of the same meaning. Against a real ModelServer:
tests/serving/test_kserve_grpc.py.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import pytest

from tests.handlers.conftest import Trained
from tests.handlers.test_kserve_metrics import samples
from tests.handlers.test_kserve_model import BLANK, loaded

SERVICE = "/inference.GRPCInferenceService/"
IMAGES = np.stack([np.zeros(64), np.arange(64) % 17]).astype(np.float32)

Call = Callable[[Any], Awaitable[Any]]


def messages() -> Any:
    from kserve.protocol.grpc import grpc_predict_v2_pb2

    return grpc_predict_v2_pb2


def tensor(name: str = "image", shape: tuple[int, ...] = (2, 64), datatype: str = "FP32", **contents: Any) -> Any:
    pb = messages()
    made = pb.ModelInferRequest.InferInputTensor(name=name, shape=list(shape), datatype=datatype)
    if contents:
        made.contents.CopyFrom(pb.InferTensorContents(**contents))
    return made


def infer_request(*tensors: Any, raw: list[bytes] | None = None, model: str = "digits", **fields: Any) -> Any:
    return messages().ModelInferRequest(model_name=model, inputs=list(tensors) or [tensor()],
                                        raw_input_contents=raw if raw is not None else [IMAGES.tobytes()], **fields)


def exchange(models: list[Any], calls: list[Call], counter: Any = None) -> list[tuple[str, Any]]:
    """Each call against a fresh in-process server hosting ``models``: ``("OK", response)`` or
    ``(status name, details)``."""
    from aip_serving.grpc_guard import guarded_interceptors
    from grpc import aio
    from kserve.model_repository import ModelRepository
    from kserve.protocol.dataplane import DataPlane
    from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc
    from kserve.protocol.grpc.servicer import InferenceServicer
    from kserve.protocol.model_repository_extension import ModelRepositoryExtension

    async def run() -> list[tuple[str, Any]]:
        repository = ModelRepository()
        for model in models:
            repository.update(model)
        server = aio.server(interceptors=guarded_interceptors(lambda name: repository.get_model(name) is not None,
                                                              counter))
        servicer = InferenceServicer(DataPlane(model_registry=repository),
                                     ModelRepositoryExtension(model_registry=repository))
        grpc_predict_v2_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        results: list[tuple[str, Any]] = []
        try:
            async with aio.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.enable_http_proxy", 0)]) as channel:
                stub = grpc_predict_v2_pb2_grpc.GRPCInferenceServiceStub(channel)
                stub.channel = channel  # for raw_call
                for call in calls:
                    try:
                        results.append(("OK", await call(stub)))
                    except aio.AioRpcError as err:
                        results.append((err.code().name, err.details()))
        finally:
            await server.stop(None)
        return results

    return asyncio.run(run())


def infer(request: Any) -> Call:
    return lambda stub: stub.ModelInfer(request)


def raw_call(method: str, body: bytes) -> Call:
    """``body`` sent as is, undecoded, to ``method``."""
    return lambda stub: stub.channel.unary_unary(SERVICE + method)(body)


@pytest.fixture(scope="module")
def digits_served(digits_trained: Trained) -> Any:
    return loaded(digits_trained)


@pytest.fixture(scope="module")
def ranker_served(ranker_trained: Trained) -> Any:
    return loaded(ranker_trained)


def outputs_of(response: Any) -> dict[str, np.ndarray]:
    from kserve.protocol.infer_type import InferResponse

    return {output.name: output.as_numpy() for output in InferResponse.from_grpc(response).outputs}


def test_model_infer_with_raw_fp32_answers_what_v1_answers(digits_served: Any) -> None:
    ((code, response),) = exchange([digits_served], [infer(infer_request(id="req-7"))])
    assert code == "OK", response
    assert response.id == "req-7" and response.model_name == "digits"
    outputs = outputs_of(response)
    v1 = asyncio.run(_maybe_await(digits_served.predict({"instances": IMAGES.tolist()}, {})))["predictions"]
    assert outputs["label"].tolist() == [p["label"] for p in v1]
    np.testing.assert_allclose(outputs["probabilities"], [p["probabilities"] for p in v1], rtol=1e-5, atol=1e-5)


async def _maybe_await(value: Any) -> Any:
    return await value if asyncio.iscoroutine(value) else value


def test_model_infer_with_typed_contents(digits_served: Any, ranker_served: Any) -> None:
    image = tensor(shape=(1, 64), fp32_contents=[float(v) for v in BLANK])
    users = tensor("user_id", (2,), "INT64", int64_contents=[3, 4])
    answers = exchange([digits_served, ranker_served], [infer(infer_request(image, raw=[])),
                                                         infer(infer_request(users, raw=[], model="ranker"))])
    assert [code for code, _ in answers] == ["OK", "OK"], answers
    assert outputs_of(answers[0][1])["label"].shape == (1,)
    assert set(outputs_of(answers[1][1])) == {"items", "scores"}


def test_repository_rpcs_are_refused_and_server_metadata_does_not_offer_them(digits_served: Any) -> None:
    pb = messages()
    answers = exchange([digits_served], [
        lambda stub: stub.RepositoryModelUnload(pb.RepositoryModelUnloadRequest(model_name="digits")),
        lambda stub: stub.RepositoryModelLoad(pb.RepositoryModelLoadRequest(model_name="digits")),
        raw_call("RepositoryIndex", b""),
        lambda stub: stub.ServerMetadata(pb.ServerMetadataRequest()),
        lambda stub: stub.ModelReady(pb.ModelReadyRequest(name="digits")),
        infer(infer_request()),
    ])
    (unload, load, index, metadata, ready, inferred) = answers
    for code, details in (unload, load, index):
        assert code == "UNIMPLEMENTED" and "model repository API is not served" in details
    assert metadata[0] == "OK" and "model_repository_extension" not in metadata[1].extensions
    assert ready[0] == "OK" and ready[1].ready
    assert inferred[0] == "OK"


def test_model_versions_are_not_found(digits_served: Any) -> None:
    pb = messages()
    answers = exchange([digits_served], [
        infer(infer_request(model_version="1")),
        infer(infer_request(model="nope", model_version="1")),
        lambda stub: stub.ModelReady(pb.ModelReadyRequest(name="digits", version="1")),
        lambda stub: stub.ModelMetadata(pb.ModelMetadataRequest(name="digits", version="2")),
        lambda stub: stub.ModelMetadata(pb.ModelMetadataRequest(name="digits")),
    ])
    for code, details in answers[:4]:
        assert code == "NOT_FOUND" and "model versions are not served" in details, (code, details)
    assert answers[4][0] == "OK" and [i.name for i in answers[4][1].inputs] == ["image"]


FP32_ROW = struct.pack("<64f", *range(64))
# (what is wrong, the request, words of the expected message)
MALFORMED: list[tuple[str, Any, str]] = [
    ("fewer raw contents than inputs", lambda: infer_request(tensor(), tensor("extra"), raw=[IMAGES.tobytes()]),
     "2 inputs and 1 raw_input_contents"),
    ("more raw contents than inputs", lambda: infer_request(raw=[IMAGES.tobytes(), b""]),
     "1 inputs and 2 raw_input_contents"),
    ("raw bytes short of the shape", lambda: infer_request(raw=[IMAGES.tobytes()[:-4]]),
     "needs 512 bytes of raw_input_contents, got 508"),
    ("raw bytes not a whole element", lambda: infer_request(raw=[IMAGES.tobytes() + b"\0"]), "got 513"),
    ("contents beside raw contents", lambda: infer_request(tensor(fp32_contents=[1.0])),
     "has contents while the request has raw_input_contents"),
    ("unknown datatype", lambda: infer_request(tensor(datatype="FLOAT")), "datatype must be one of"),
    ("negative dimension", lambda: infer_request(tensor(shape=(-2, 64))), "shape must be non-negative"),
    ("-1 dimension", lambda: infer_request(tensor(shape=(-1, 64))), "shape must be non-negative"),
    ("no inputs", lambda: messages().ModelInferRequest(model_name="digits"), "at least one tensor"),
    ("input without a name", lambda: infer_request(tensor(name="")), "inputs[0] has no name"),
    ("input named twice", lambda: infer_request(tensor(shape=(1, 64)), tensor(shape=(1, 64)),
                                                raw=[FP32_ROW, FP32_ROW]), "appears more than once"),
    ("too few typed values", lambda: infer_request(tensor(fp32_contents=[0.0] * 100), raw=[]),
     "holds 128 elements, contents.fp32_contents has 100"),
    ("values in another field", lambda: infer_request(tensor(int_contents=[0] * 128), raw=[]),
     "FP32 is read from contents.fp32_contents, the data is in contents.int_contents"),
    ("FP16 without raw contents", lambda: infer_request(tensor(datatype="FP16"), raw=[]),
     "FP16 data goes in raw_input_contents"),
    ("INT8 out of range", lambda: infer_request(tensor(datatype="INT8", int_contents=[300] * 128), raw=[]),
     "INT8 values must lie in [-128, 127]"),
    ("BYTES length past the end", lambda: infer_request(tensor(shape=(1,), datatype="BYTES"),
                                                        raw=[struct.pack("<I", 9) + b"abc"]), "says 9 bytes"),
    ("BYTES not UTF-8", lambda: infer_request(tensor(shape=(1,), datatype="BYTES"),
                                              raw=[struct.pack("<I", 2) + b"\xff\xfe"]), "not UTF-8"),
]


@pytest.mark.parametrize(("name", "make", "words"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_check_infer_request_names_what_is_wrong(name: str, make: Callable[[], Any], words: str) -> None:
    from aip_serving.grpc_guard import check_infer_request
    from aip_serving.guard import BadRequest

    with pytest.raises(BadRequest) as caught:
        check_infer_request(make())
    assert words in str(caught.value)


def test_check_infer_request_passes_well_formed_requests() -> None:
    from aip_serving.grpc_guard import check_infer_request

    check_infer_request(infer_request())
    check_infer_request(infer_request(tensor(shape=(0, 64)), raw=[b""]))
    check_infer_request(infer_request(tensor(fp32_contents=[0.5] * 128), raw=[]))
    check_infer_request(infer_request(tensor("t", (2,), "BYTES", bytes_contents=[b"a", b"b"]), raw=[]))
    check_infer_request(infer_request(tensor("t", (2,), "BYTES"), raw=[struct.pack("<I", 1) + b"a" + struct.pack(
        "<I", 0)]))
    check_infer_request(infer_request(tensor("h", (2,), "FP16"), raw=[b"\0" * 4]))


def test_malformed_requests_are_invalid_argument_and_the_model_keeps_serving(digits_served: Any) -> None:
    calls = [infer(make()) for _, make, _ in MALFORMED]
    calls += [raw_call("ModelInfer", b"\xff\xff\xff"), infer(infer_request())]
    answers = exchange([digits_served], calls)
    assert len(answers) == len(MALFORMED) + 2
    for (name, _, words), (code, details) in zip(MALFORMED, answers[:len(MALFORMED)], strict=True):
        assert code == "INVALID_ARGUMENT" and words in details, (name, code, details)
    assert answers[-2][0] == "INVALID_ARGUMENT" and "not a ModelInferRequest" in answers[-2][1]
    assert answers[-1][0] == "OK"


def test_the_models_invalid_input_is_invalid_argument(digits_served: Any) -> None:
    unknown = tensor("pixels", (1, 64), fp32_contents=[0.0] * 64)
    misshapen = tensor(shape=(1, 63), fp32_contents=[0.0] * 63)
    answers = exchange([digits_served], [infer(infer_request(unknown, raw=[])),
                                         infer(infer_request(misshapen, raw=[]))])
    assert answers[0][0] == "INVALID_ARGUMENT" and 'unknown input "pixels"' in answers[0][1]
    assert answers[1][0] == "INVALID_ARGUMENT" and "expected shape [N, 64]" in answers[1][1]


def test_each_model_infer_of_a_hosted_model_is_counted_by_http_status(digits_trained: Trained) -> None:
    from aip_serving.metrics import requests_counter
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    digits, broken = loaded(digits_trained), loaded(digits_trained)
    broken.name, broken.core = "broken", None  # loaded, then its core gone: predict raises RuntimeError
    pb = messages()
    exchange([digits, broken], [
        infer(infer_request()),  # 200
        infer(infer_request(raw=[b"\0"])),  # the guard: 400
        infer(infer_request(tensor("pixels"))),  # the model's InvalidInput: 400
        infer(infer_request(model_version="3")),  # 404
        infer(infer_request(model="broken")),  # INTERNAL: 500
        # Not counted: unknown models, undecodable requests, other RPCs.
        infer(infer_request(model="nope")),
        raw_call("ModelInfer", b"\xff"),
        lambda stub: stub.ModelReady(pb.ModelReadyRequest(name="digits")),
    ], counter=requests_counter(registry))
    assert samples(registry) == {("digits", "200"): 1, ("digits", "400"): 2, ("digits", "404"): 1,
                                 ("broken", "500"): 1}


@pytest.mark.parametrize(("code", "status"), [
    ("OK", 200), (None, 200), ("INVALID_ARGUMENT", 400), ("NOT_FOUND", 404), ("UNIMPLEMENTED", 501),
    ("CANCELLED", 499), ("UNAVAILABLE", 503), ("INTERNAL", 500), ("UNKNOWN", 500), ("SOMETHING_NEW", 500),
])
def test_grpc_statuses_map_to_the_http_status_of_the_same_meaning(code: str | None, status: int) -> None:
    from aip_serving.metrics import http_status_of_grpc

    assert http_status_of_grpc(code) == status


def test_a_cancelled_call_is_counted_499(digits_trained: Trained) -> None:
    import grpc
    from aip_serving.grpc_guard import RequestCounterInterceptor
    from aip_serving.metrics import requests_counter
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    interceptor = RequestCounterInterceptor(lambda name: name == "digits", requests_counter(registry))

    async def never_answers(request: Any, context: Any) -> Any:
        raise asyncio.CancelledError

    class Details:
        method = SERVICE + "ModelInfer"

    async def run() -> None:
        async def continuation(details: Any) -> Any:
            return grpc.unary_unary_rpc_method_handler(never_answers)

        handler = await interceptor.intercept_service(continuation, Details())
        with pytest.raises(asyncio.CancelledError):
            await handler.unary_unary(infer_request(), None)

    asyncio.run(run())
    assert samples(registry) == {("digits", "499"): 1}


def test_serve_takes_a_grpc_port_in_both_spellings_and_0_for_none() -> None:
    from aip_serving.kserve import parse_serve_args

    assert parse_serve_args([], default_name="digits").grpc_port == 8081
    assert parse_serve_args(["--grpc-port", "9001"], default_name="digits").grpc_port == 9001
    assert parse_serve_args(["--grpc_port", "0"], default_name="digits").grpc_port == 0


def test_install_keeps_a_guarded_subclass_and_replaces_kserves_server() -> None:
    import kserve.model_server
    from aip_serving.grpc_guard import GuardedGRPCServer, install_grpc_guard
    from kserve.protocol.grpc.server import GRPCServer

    original = kserve.model_server.GRPCServer
    try:
        kserve.model_server.GRPCServer = GRPCServer
        install_grpc_guard()
        assert kserve.model_server.GRPCServer is GuardedGRPCServer

        class OnLoopback(GuardedGRPCServer):
            listen_host = "127.0.0.1"

        kserve.model_server.GRPCServer = OnLoopback
        install_grpc_guard()
        assert kserve.model_server.GRPCServer is OnLoopback
    finally:
        kserve.model_server.GRPCServer = original
