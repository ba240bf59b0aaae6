"""A real KServe ModelServer hosting every model's predictor on loopback: v1, v2, errors, metrics."""

from __future__ import annotations

import json

import httpx
import pytest

from infra.serving.catalog import Catalog
from infra.serving.examples import check_response
from infra.serving.kserve_process import KServeServer
from tests.serving.conftest import LOOPBACK_HOSTS, example, group_pids, listening

pytestmark = pytest.mark.integration

JSON = {"Content-Type": "application/json"}
# Two 8x8 digits (a 0 and a 7, from the digits examples), flattened.
ZERO = [0, 0, 3, 11, 7, 1, 0, 0, 0, 0, 10, 15, 14, 14, 0, 0, 0, 2, 16, 10, 1, 12, 4, 0, 0, 2, 16, 3, 0, 4, 8, 0,
        0, 5, 12, 0, 0, 6, 8, 0, 0, 1, 12, 0, 0, 11, 9, 0, 0, 0, 15, 9, 14, 15, 1, 0, 0, 0, 4, 15, 15, 4, 0, 0]


def client() -> httpx.Client:
    return httpx.Client(timeout=30, trust_env=False, headers=JSON)


def test_rest_and_grpc_are_the_only_listeners_and_on_loopback(kserve: KServeServer):
    pgid = kserve.process_group()
    assert pgid is not None
    sockets = listening(group_pids(pgid))
    assert {port for _, port in sockets} == {kserve.port, kserve.grpc_port}
    assert {host for host, _ in sockets} <= LOOPBACK_HOSTS


def test_v1_batch(kserve: KServeServer, catalog: Catalog):
    case = example(catalog, "digits", "batch-mixed-layouts")
    with client() as http:
        answer = http.post(kserve.v1_url("digits"), content=case.body())
    assert check_response(case.expect, answer.status_code, answer.text) == []


def test_v2_infer_answers_named_tensors_with_the_request_id_and_the_packaged_version(kserve: KServeServer):
    request = {"id": "req-42", "inputs": [{"name": "image", "shape": [2, 64], "datatype": "FP32",
                                           "data": ZERO + ZERO}]}
    with client() as http:
        answer = http.post(kserve.v2_url("digits"), json=request)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["id"] == "req-42" and body["model_name"] == "digits"
    assert body["model_version"] == next(m.package.version for m in kserve.models if m.name == "digits")
    outputs = {output["name"]: output for output in body["outputs"]}
    assert outputs["label"]["shape"] == [2] and outputs["label"]["data"] == [0, 0]
    assert outputs["probabilities"]["shape"] == [2, 10]


def test_v2_infer_of_the_second_model_in_the_same_process(kserve: KServeServer):
    request = {"inputs": [{"name": "user_id", "shape": [2], "datatype": "INT64", "data": [3, 4]}]}
    with client() as http:
        answer = http.post(kserve.v2_url("ranker"), json=request)
    assert answer.status_code == 200, answer.text
    assert {output["name"] for output in answer.json()["outputs"]} == {"items", "scores"}


def test_bad_inputs_get_a_4xx_with_the_message_and_the_server_keeps_serving(kserve: KServeServer, catalog: Catalog):
    with client() as http:
        for model in ("digits", "ranker"):
            for case in catalog.load(model).examples:
                if case.expect.status >= 400:
                    answer = http.post(kserve.v1_url(model), content=case.body())
                    assert check_response(case.expect, answer.status_code, answer.text) == [], f"{model}/{case.name}"
        unknown = http.post(kserve.v2_url("digits"), json={"inputs": [
            {"name": "pixels", "shape": [1, 64], "datatype": "FP32", "data": ZERO}]})
        assert unknown.status_code == 400 and 'unknown input "pixels"' in unknown.json()["error"]
        misshapen = http.post(kserve.v2_url("digits"), json={"inputs": [
            {"name": "image", "shape": [1, 63], "datatype": "FP32", "data": ZERO[:63]}]})
        assert misshapen.status_code == 400
        assert misshapen.json()["error"] == 'input "image": expected shape [N, 64] or [N, 8, 8], got [1, 63]'
        good = example(catalog, "digits", "single-image")
        answer = http.post(kserve.v1_url("digits"), content=good.body())
        assert check_response(good.expect, answer.status_code, answer.text) == []
    assert kserve.ready()


def test_metrics_have_kserves_latency_histograms(kserve: KServeServer, catalog: Catalog):
    with client() as http:
        http.post(kserve.v1_url("ranker"), content=example(catalog, "ranker", "single-user").body())
        metrics = http.get(kserve.metrics_url())
    assert metrics.status_code == 200
    assert "request_predict_seconds_bucket" in metrics.text


def test_the_host_gets_each_models_torch_threads(kserve: KServeServer):
    """kserve_host.py applies the largest of them to its one process (tests/serving/test_catalog.py)."""
    entries = json.loads((kserve.work_dir / "kserve-spec.json").read_text())["models"]
    assert {entry["name"]: entry["torch_threads"] for entry in entries} == {
        model.name: model.folder.config.torch_threads for model in kserve.models}
