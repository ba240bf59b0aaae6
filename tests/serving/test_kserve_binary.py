"""A real KServe ModelServer on loopback: v2 binary tensors in and out, and concurrent requests sharing forward
passes, each answer checked against the same weights predicting in this process.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from infra.serving.kserve_process import KServeServer
from tests.handlers.conftest import import_model_folder
from tests.handlers.test_kserve_binary import binary_body, parse_binary_response

pytestmark = pytest.mark.integration

CONCURRENT = 16


@pytest.fixture(scope="module")
def cores(kserve: KServeServer) -> Iterator[dict[str, Any]]:
    """Each served model's core, loaded here from the very weights file the server loaded."""
    loaded = {}
    runtime_dir = str(kserve.models[0].runtime_dir)
    sys.path.insert(0, runtime_dir)
    try:
        for served in kserve.models:
            folder = import_model_folder(served.folder.path)
            core_class = {"digits": "DigitsCore", "ranker": "RankerCore"}[served.name]
            loaded[served.name] = getattr(folder.core, core_class).load(kserve.work_dir / "models" / served.name)
    finally:
        sys.path.remove(runtime_dir)
    yield loaded


def images(count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 17, size=(count, 64)).astype(np.float32)


def client() -> httpx.Client:
    return httpx.Client(timeout=30, trust_env=False)


def test_binary_images_in_binary_outputs_out(kserve: KServeServer, cores: dict[str, Any]) -> None:
    image = images(5, seed=1)
    body, headers = binary_body({"image": image}, request_id="bin-7", parameters={"binary_data_output": True})
    with client() as http:
        answer = http.post(kserve.v2_url("digits"), content=body, headers=headers)
    assert answer.status_code == 200, answer.text
    header, arrays, binary = parse_binary_response(answer)
    assert header["id"] == "bin-7" and header["model_name"] == "digits" and binary == {"label", "probabilities"}
    assert [o["parameters"]["binary_data_size"] for o in header["outputs"]] == [5 * 8, 5 * 10 * 4]
    assert arrays["label"].dtype == np.int64 and arrays["probabilities"].shape == (5, 10)
    expected = cores["digits"].predict(image.tolist())
    assert arrays["label"].tolist() == [p["label"] for p in expected]
    # Both sides round to 6 decimals after a forward pass whose thread count (and so summation order) may
    # differ: the last decimal can flip, and FP32 adds its own 1e-7.
    assert arrays["probabilities"] == pytest.approx(np.array([p["probabilities"] for p in expected]), abs=1e-5)


def test_compact_uint8_images_and_json_outputs(kserve: KServeServer, cores: dict[str, Any]) -> None:
    image = images(2, seed=2).astype(np.uint8).reshape(2, 8, 8)
    body, headers = binary_body({"image": image})
    with client() as http:
        answer = http.post(kserve.v2_url("digits"), content=body, headers=headers)
    assert answer.status_code == 200, answer.text
    assert "inference-header-content-length" not in answer.headers  # nothing binary was asked for
    outputs = {o["name"]: o for o in answer.json()["outputs"]}
    assert outputs["label"]["data"] == [p["label"] for p in cores["digits"].predict(image.reshape(2, 64).tolist())]


def test_ranker_binary_ids_with_one_output_as_bytes(kserve: KServeServer, cores: dict[str, Any]) -> None:
    users = np.array([3, 141, 59], dtype=np.int64)
    body, headers = binary_body({"user_id": users, "k": np.array([4], dtype=np.int64)},
                                outputs=[{"name": "items", "parameters": {"binary_data": True}}, {"name": "scores"}])
    with client() as http:
        answer = http.post(kserve.v2_url("ranker"), content=body, headers=headers)
    assert answer.status_code == 200, answer.text
    header, arrays, binary = parse_binary_response(answer)
    assert binary == {"items"} and header["outputs"][1]["name"] == "scores" and "data" in header["outputs"][1]
    expected = cores["ranker"].predict([{"user_id": int(user), "k": 4} for user in users])
    assert arrays["items"].tolist() == [p["items"] for p in expected]
    assert arrays["scores"] == pytest.approx(np.array([p["scores"] for p in expected]), abs=1e-4)


def test_bad_binary_values_are_a_400_naming_the_row(kserve: KServeServer) -> None:
    image = images(3, seed=3)
    image[2, 9] = np.nan
    body, headers = binary_body({"image": image})
    with client() as http:
        answer = http.post(kserve.v2_url("digits"), content=body, headers=headers)
    assert answer.status_code == 400
    assert answer.json() == {"error": 'input "image" row 2, element [9]: expected a finite number, got NaN'}


def test_concurrent_v1_requests_each_get_their_own_answers(kserve: KServeServer, cores: dict[str, Any]) -> None:
    digits = [images(1 + index % 3, seed=100 + index) for index in range(CONCURRENT)]
    users = [[{"user_id": (index * 37 + offset) % 600, "k": 3 + index % 4} for offset in range(1 + index % 2)]
             for index in range(CONCURRENT)]

    async def send_all() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=2 * CONCURRENT)
        async with httpx.AsyncClient(timeout=60, trust_env=False, limits=limits) as http:
            calls = [http.post(kserve.v1_url("digits"), json={"instances": batch.tolist()}) for batch in digits]
            calls += [http.post(kserve.v1_url("ranker"), json={"instances": batch}) for batch in users]
            return await asyncio.gather(*calls)

    answers = asyncio.run(send_all())
    assert [answer.status_code for answer in answers] == [200] * 2 * CONCURRENT, [a.text for a in answers]
    for batch, answer in zip(digits, answers[:CONCURRENT], strict=True):
        got, expected = answer.json()["predictions"], cores["digits"].predict(batch.tolist())
        assert [p["label"] for p in got] == [p["label"] for p in expected]
        for one, other in zip(got, expected, strict=True):
            assert one["probabilities"] == pytest.approx(other["probabilities"], abs=1e-5)
    for batch, answer in zip(users, answers[CONCURRENT:], strict=True):
        got, expected = answer.json()["predictions"], cores["ranker"].predict(batch)
        assert [p["items"] for p in got] == [p["items"] for p in expected]
        for one, other in zip(got, expected, strict=True):
            assert one["scores"] == pytest.approx(other["scores"], abs=1e-3)
    assert kserve.ready()
