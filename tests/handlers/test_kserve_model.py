"""The KServe predictors: v1 dicts and bytes, v2 InferRequests, 400s, and the real REST routes in-process."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import numpy as np
import pytest

from tests.handlers.conftest import Trained

BLANK = [0] * 64


def predict(model: Any, payload: Any, headers: dict[str, str] | None = None) -> Any:
    """``KServeModel.predict`` is a coroutine, as KServe's ``Model.__call__`` awaits it."""
    return asyncio.run(model.predict(payload, headers))


def loaded(trained: Trained, **kwargs: Any) -> Any:
    classes = {"digits": "DigitsModel", "ranker": "RankerModel"}
    model = getattr(trained.folder.predictor, classes[trained.folder.name])(trained.folder.name, trained.model_dir,
                                                                             **kwargs)
    assert not model.ready
    assert model.load() and model.ready
    return model


@pytest.fixture(scope="module")
def digits_model(digits_trained: Trained) -> Any:
    return loaded(digits_trained)


@pytest.fixture(scope="module")
def ranker_model(ranker_trained: Trained) -> Any:
    return loaded(ranker_trained)


def test_v1_dict(digits_model: Any) -> None:
    answer = predict(digits_model, {"instances": [BLANK, BLANK]}, {})
    assert len(answer["predictions"]) == 2


def test_v1_bytes_are_decoded(digits_model: Any) -> None:
    """What KServe hands over when the client sends a content type other than JSON."""
    from kserve.errors import InvalidInput

    assert len(predict(digits_model, json.dumps({"instances": [[BLANK[:8]] * 8]}).encode())["predictions"]) == 1
    # A classic mistake: one image's 8 rows sent as 8 instances.
    with pytest.raises(InvalidInput, match=r"^instances\[0\]: expected 64 numbers \(an 8x8 image\), got 8; "):
        predict(digits_model, json.dumps({"instances": [BLANK[:8]] * 8}).encode())


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"\x00\x01garbage", "request body is not valid JSON: Expecting value at line 1 column 1"),
        (b"\xff", "request body is not UTF-8 text (invalid byte at position 0)"),
        ({"instances": []}, '"instances" is empty: send at least one instance'),
        ({"instances": [BLANK[:5]]}, "instances[0]: expected 64 numbers (an 8x8 image), got 5"),
        ({"instances": [BLANK], "extra": 1}, 'unknown top-level field "extra" (allowed: instances)'),
    ],
)
def test_invalid_input_is_a_400(digits_model: Any, payload: Any, message: str) -> None:
    from kserve.errors import InvalidInput

    with pytest.raises(InvalidInput) as caught:
        predict(digits_model, payload, {"x-request-id": "r-1"})
    assert str(caught.value) == message


def v2_request(name: str, inputs: list[Any], request_id: str | None = None) -> Any:
    from kserve.protocol.infer_type import InferRequest

    return InferRequest(model_name=name, infer_inputs=inputs, request_id=request_id)


def test_v2_digits(digits_model: Any) -> None:
    from kserve.protocol.infer_type import InferInput, InferResponse

    image = InferInput("image", [3, 8, 8], "FP32", data=np.zeros((3, 8, 8)).flatten().tolist())
    response = predict(digits_model, v2_request("digits", [image], "req-42"))
    assert isinstance(response, InferResponse)
    assert response.id == "req-42"
    outputs = {output.name: output for output in response.outputs}
    assert outputs["label"].datatype == "INT64" and outputs["label"].shape == [3]
    assert outputs["probabilities"].datatype == "FP32" and outputs["probabilities"].shape == [3, 10]
    assert outputs["probabilities"].as_numpy().sum(axis=1) == pytest.approx([1, 1, 1], abs=1e-4)


def test_v2_without_an_id_gets_a_new_one(ranker_model: Any) -> None:
    from kserve.protocol.infer_type import InferInput

    users = InferInput("user_id", [2], "INT64", data=[1, 2])
    k = InferInput("k", [1], "INT64", data=[3])
    response = predict(ranker_model, v2_request("ranker", [users, k]))
    assert len(response.id) == 36  # a uuid4
    outputs = {output.name: output.as_numpy() for output in response.outputs}
    assert outputs["items"].shape == (2, 3) and outputs["scores"].shape == (2, 3)


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ([("image", [1, 64], "BOOL", [True] * 64)], 'input "image": expected pixels in [0, 16] (FP32 or another '
                                                    "number datatype), got BOOL"),
        ([("image", [1, 64], "FP32", [0.0] * 63)], 'input "image": data does not fit shape [1, 64]'),
        ([("image", [64], "FP32", [0.0] * 64)], 'input "image": expected shape [N, 64] or [N, 8, 8], got [64]'),
        ([("pixels", [1, 64], "FP32", [0.0] * 64)], 'unknown input "pixels" (expected: image)'),
        ([("image", [1, 64], "FP32", [0.0] * 64)] * 2, 'input "image" appears more than once'),
        ([("image", [65, 64], "FP32", [0.0] * 64 * 65)], 'input "image" has 65 rows, more than the limit of 64'),
        ([("image", [2, 64], "FP32", [0.0] * 64 + [0.0] * 5 + [float("nan")] + [0.0] * 58)],
         'input "image" row 1, element [5]: expected a finite number, got NaN'),
        # numpy raises OverflowError (not ValueError) for an integer outside INT64.
        ([("image", [1, 64], "INT64", [2**70] * 64)], 'input "image": data does not fit shape [1, 64]'),
    ],
)
def test_v2_invalid_input_is_a_400(digits_model: Any, inputs: list[Any], message: str) -> None:
    from kserve.errors import InvalidInput
    from kserve.protocol.infer_type import InferInput

    request = v2_request("digits", [InferInput(name, shape, dtype, data=data) for name, shape, dtype, data in inputs])
    with pytest.raises(InvalidInput) as caught:
        predict(digits_model, request)
    assert str(caught.value).startswith(message)


def test_max_batch_instances_is_configurable(digits_trained: Trained) -> None:
    from kserve.errors import InvalidInput

    model = loaded(digits_trained, max_batch_instances=1)
    with pytest.raises(InvalidInput, match="more than the limit of 1 per request"):
        predict(model, {"instances": [BLANK, BLANK]})


def test_serve_arguments_accept_both_spellings(digits_trained: Trained) -> None:
    from aip_serving.kserve import parse_serve_args

    args = parse_serve_args(["--model_name", "d", "--model-dir", "/w", "--http_port", "9000", "--workers", "1"],
                            default_name="digits")
    assert (args.model_name, args.model_dir, args.http_port, args.max_batch_instances) == ("d", "/w", 9000, None)
    assert parse_serve_args([], default_name="digits").model_name == "digits"


def rest_app(*models: Any) -> Any:
    """KServe 0.16's own REST routes and error handlers on a private FastAPI app (no socket, no server)."""
    import fastapi
    from kserve.model_repository import ModelRepository
    from kserve.protocol.dataplane import DataPlane
    from kserve.protocol.model_repository_extension import ModelRepositoryExtension
    from kserve.protocol.rest.server import RESTServer

    repository = ModelRepository()
    for model in models:
        repository.update(model)
    server = RESTServer("unused:app", DataPlane(model_registry=repository),
                        ModelRepositoryExtension(model_registry=repository), http_port=0)
    app = fastapi.FastAPI()
    server._register_endpoints(app)
    server._add_exception_handlers(app)
    return app


# kserve 0.16 answers with ORJSONResponse, which the installed FastAPI deprecates.
@pytest.mark.filterwarnings("ignore:ORJSONResponse is deprecated")
def test_rest_routes_in_process(digits_model: Any, ranker_model: Any) -> None:
    async def exchange() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=rest_app(digits_model, ranker_model))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            body = json.dumps({"instances": [BLANK]})
            v2 = {"id": "abc", "inputs": [{"name": "user_id", "shape": [1], "datatype": "INT64", "data": [5]}]}
            return [
                await client.post("/v1/models/digits:predict", content=body,
                                  headers={"content-type": "application/json"}),
                await client.post("/v1/models/digits:predict", content=body, headers={"content-type": "text/plain"}),
                await client.post("/v1/models/digits:predict", content=b"{", headers={"content-type": "text/plain"}),
                await client.post("/v1/models/ranker:predict", json={"instances": [{"user_id": 9999}]}),
                await client.post("/v2/models/ranker/infer", json=v2),
                await client.get("/v2/health/ready"),
            ]

    v1_json, v1_text, v1_broken, v1_bad_user, v2, ready = asyncio.run(exchange())
    assert v1_json.status_code == 200 and len(v1_json.json()["predictions"]) == 1
    assert v1_text.status_code == 200 and v1_text.json() == v1_json.json()
    assert v1_broken.status_code == 400
    assert v1_broken.json() == {"error": "request body is not valid JSON: Expecting property name enclosed in "
                                         "double quotes at line 1 column 2"}
    assert v1_bad_user.status_code == 400
    assert v1_bad_user.json() == {"error": "instances[0].user_id: unknown user id 9999 (known ids: 0..599)"}
    assert v2.status_code == 200
    assert v2.json()["id"] == "abc" and v2.json()["model_name"] == "ranker"
    assert {output["name"]: output["shape"] for output in v2.json()["outputs"]} == {"items": [1, 10],
                                                                                     "scores": [1, 10]}
    assert ready.status_code == 200


def test_v2_int64_overflow_is_a_400_for_the_ranker(ranker_model: Any) -> None:
    from kserve.errors import InvalidInput
    from kserve.protocol.infer_type import InferInput

    users = InferInput("user_id", [1], "INT64", data=[2**70])
    with pytest.raises(InvalidInput, match='input "user_id": data does not fit shape'):
        predict(ranker_model, v2_request("ranker", [users]))


def test_v1_huge_integer_is_a_400(digits_model: Any) -> None:
    from kserve.errors import InvalidInput

    with pytest.raises(InvalidInput, match="integers may have at most 4300 digits"):
        predict(digits_model, b'{"instances": [[' + b"9" * 5000 + b"]]}")


def test_serve_sets_torch_threads_from_the_model_folder(digits_trained: Trained, tmp_path: Any,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """``serve()`` calls ``apply_torch_threads`` first; it reads the config next to the predictor's file."""
    import importlib.util
    import sys

    import torch
    from aip_serving.kserve import apply_torch_threads
    from aip_serving.model_config import MODEL_CONFIG_FILE, read_model_config, torch_threads
    from aip_serving.threads import threads_per_process

    before = torch.get_num_threads()
    wanted = 1 if before != 1 else 2
    (tmp_path / MODEL_CONFIG_FILE).write_text(f"maxBatchInstances: 4\ntorchThreads: {wanted}\n")
    (tmp_path / "threads_predictor.py").write_text(
        "from aip_serving.kserve import KServeModel\n\n\nclass ThreadsModel(KServeModel):\n    pass\n")
    spec = importlib.util.spec_from_file_location("threads_predictor", tmp_path / "threads_predictor.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "threads_predictor", module)
    spec.loader.exec_module(module)
    try:
        assert apply_torch_threads(module.ThreadsModel) == wanted == torch.get_num_threads()
        torch.set_num_threads(before)
        shipped = torch_threads(read_model_config(digits_trained.folder.path / MODEL_CONFIG_FILE))
        # As `python predictor.py` runs it: the predictor's module is loaded (the fixture unloads it).
        monkeypatch.setitem(sys.modules, "predictor", digits_trained.folder.predictor)
        expected = shipped or threads_per_process(None, 1)
        assert apply_torch_threads(digits_trained.folder.predictor.DigitsModel) == expected
        assert torch.get_num_threads() == expected
    finally:
        torch.set_num_threads(before)
