"""A real TorchServe (Java frontend, Python workers) serving the packaged archives on loopback."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from infra.serving.catalog import Catalog
from infra.serving.config_properties import parse_config_properties
from infra.serving.examples import Example, check_response
from infra.serving.torchserve_process import TorchServeServer
from tests.serving.conftest import LOOPBACK_HOSTS, example, group_pids, listening

pytestmark = pytest.mark.integration

JSON = {"Content-Type": "application/json"}


def post(server: TorchServeServer, url: str, case: Example) -> httpx.Response:
    return httpx.post(url, content=case.body(), headers={**JSON, **server.request_headers()}, timeout=30,
                      trust_env=False)


def test_every_listener_is_on_loopback(torchserve: TorchServeServer):
    pgid = torchserve.process_group()
    assert pgid is not None
    sockets = listening(group_pids(pgid))
    lst = torchserve.listeners
    assert {port for _, port in sockets} == {lst.inference_port, lst.management_port, lst.metrics_port,
                                             lst.grpc_inference_port, lst.grpc_management_port}
    assert {host for host, _ in sockets} <= LOOPBACK_HOSTS


@pytest.mark.parametrize("route", ["predictions", "kserve-v1"])
def test_a_batch_of_instances_on_both_routes(torchserve: TorchServeServer, catalog: Catalog, route: str):
    case = example(catalog, "digits", "batch-mixed-layouts")
    url = torchserve.predictions_url("digits") if route == "predictions" else torchserve.v1_url("digits")
    answer = post(torchserve, url, case)
    assert check_response(case.expect, answer.status_code, answer.text) == []
    assert case.instance_count == len(answer.json()["predictions"]) > 1


def test_concurrent_requests_each_get_their_own_answers(torchserve: TorchServeServer, catalog: Catalog):
    """Requests that TorchServe groups into one batch (batchSize > 1) still get their own predictions."""
    cases = [example(catalog, "digits", "single-image"), example(catalog, "digits", "batch-mixed-layouts"),
             example(catalog, "digits", "invalid-empty-batch")] * 6
    with ThreadPoolExecutor(max_workers=len(cases)) as pool:
        answers = list(pool.map(lambda case: post(torchserve, torchserve.v1_url("digits"), case), cases))
    for case, answer in zip(cases, answers, strict=True):
        assert check_response(case.expect, answer.status_code, answer.text) == [], case.name


def test_bad_inputs_get_a_4xx_with_the_message_and_the_workers_keep_serving(torchserve: TorchServeServer,
                                                                             catalog: Catalog):
    for model in ("digits", "ranker"):
        for case in catalog.load(model).examples:
            if case.expect.status >= 400:
                answer = post(torchserve, torchserve.v1_url(model), case)
                assert 400 <= answer.status_code < 500
                assert check_response(case.expect, answer.status_code, answer.text) == [], f"{model}/{case.name}"
    good = example(catalog, "ranker", "single-user")
    answer = post(torchserve, torchserve.v1_url("ranker"), good)
    assert check_response(good.expect, answer.status_code, answer.text) == []
    assert torchserve.ready()


def test_the_worker_hands_bodies_over_raw_and_answers_are_compact(torchserve: TorchServeServer, catalog: Catalog):
    """`decode_input_request=false`: no `json.loads` in the worker, so a body that is not JSON logs no
    "Failed json decoding" traceback; the handler's answers go out as its compact bytes."""
    headers = {**JSON, **torchserve.request_headers()}
    broken = httpx.post(torchserve.v1_url("digits"), content=b"{", headers=headers, timeout=30, trust_env=False)
    answer = post(torchserve, torchserve.v1_url("digits"), example(catalog, "digits", "single-image"))
    assert broken.status_code == 400 and broken.json()["message"].startswith("request body is not valid JSON")
    assert broken.headers["content-type"] == answer.headers["content-type"] == "application/json"
    assert answer.status_code == 200 and b"\n" not in answer.content and b'{"predictions":[{' in answer.content
    assert "Failed json decoding" not in (torchserve.work_dir / "logs" / "model_log.log").read_text()


def test_undecodable_body_is_a_400(torchserve: TorchServeServer):
    answer = httpx.post(torchserve.v1_url("digits"), content=b"\xff{not json", timeout=30, trust_env=False,
                        headers={**JSON, **torchserve.request_headers()})
    assert answer.status_code == 400 and "not UTF-8" in answer.json()["message"]


def test_a_request_without_the_token_is_refused(torchserve: TorchServeServer, catalog: Catalog):
    case = example(catalog, "digits", "single-image")
    answer = httpx.post(torchserve.v1_url("digits"), content=case.body(), headers=JSON, timeout=30, trust_env=False)
    assert answer.status_code == 400 and answer.json()["type"] == "InvalidKeyException"


def test_model_registration_and_deletion_are_off(torchserve: TorchServeServer):
    management = torchserve.listeners.management_url
    headers = torchserve.management_headers()
    register = httpx.post(f"{management}/models", params={"url": "digits.mar"}, headers=headers, trust_env=False)
    delete = httpx.delete(f"{management}/models/digits", headers=headers, trust_env=False)
    assert (register.status_code, delete.status_code) == (405, 405)
    assert torchserve.ready()


def test_metrics_are_prometheus_text(torchserve: TorchServeServer, catalog: Catalog):
    post(torchserve, torchserve.v1_url("digits"), example(catalog, "digits", "single-image"))
    metrics = httpx.get(torchserve.metrics_url(), timeout=30, trust_env=False)
    assert metrics.status_code == 200
    assert 'ts_inference_requests_total{model_name="digits"' in metrics.text


def test_the_config_torchserve_runs_with_is_the_packaged_one_on_loopback(torchserve: TorchServeServer):
    local = parse_config_properties((torchserve.work_dir / "config" / "config.properties").read_text())
    packaged = parse_config_properties(torchserve.models[0].package.files["config/config.properties"].read_text())
    for key in ("enable_model_api", "enable_envvars_config", "install_py_dep_per_model", "metrics_mode",
                "decode_input_request"):
        assert local[key] == packaged[key]
    snapshot = json.loads(local["model_snapshot"])["models"]
    assert {name: list(versions) for name, versions in snapshot.items()} == {
        m.name: [m.package.version] for m in torchserve.models}
