"""The Prometheus client of canary analysis: instant vectors read, every failure one clear message."""

from __future__ import annotations

import json
import math

import httpx
import pytest

from infra.delivery.prometheus import PrometheusClient, PrometheusError, Sample, check_url
from infra.serving.processes import free_ports

URL = "http://prometheus.example:9090"


def answering(status: int, body: object, *, seen: list[httpx.Request] | None = None) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return httpx.Response(status, content=content)

    return httpx.MockTransport(handle)


def vector(*series: tuple[dict[str, str], str]) -> dict[str, object]:
    return {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": labels, "value": [1767225600.0, value]} for labels, value in series]}}


def test_an_instant_query_returns_each_series_and_drops_nan():
    seen: list[httpx.Request] = []
    transport = answering(200, vector(({"track": "stable"}, "0.25"), ({"track": "canary"}, "NaN")), seen=seen)
    with PrometheusClient(URL + "/", transport=transport) as client:
        samples = client.query('avg_over_time(x{track="stable"}[10m])')
    assert samples == [Sample(labels={"track": "stable"}, value=0.25)]
    assert seen[0].method == "GET"
    assert str(seen[0].url.copy_with(query=None)) == f"{URL}/api/v1/query"
    assert seen[0].url.params["query"] == 'avg_over_time(x{track="stable"}[10m])'
    assert not math.isnan(samples[0].value)


def test_a_path_prefix_is_kept():
    seen: list[httpx.Request] = []
    with PrometheusClient(URL + "/prometheus", transport=answering(200, vector(), seen=seen)) as client:
        assert client.query("up") == []
    assert seen[0].url.path == "/prometheus/api/v1/query"


def test_a_refused_query_quotes_prometheus_error():
    body = {"status": "error", "errorType": "bad_data", "error": 'parse error: unexpected "}"'}
    with PrometheusClient(URL, transport=answering(400, body)) as client, pytest.raises(PrometheusError) as raised:
        client.query("x{")
    assert str(raised.value) == (f'Prometheus at {URL} answered HTTP 400 to {URL}/api/v1/query: parse error: '
                                 'unexpected "}"')


def test_a_non_json_error_page_is_quoted():
    with PrometheusClient(URL, transport=answering(502, b"Bad Gateway\n")) as client, \
            pytest.raises(PrometheusError, match=r"answered HTTP 502 to .*/api/v1/query: Bad Gateway$"):
        client.query("up")


def test_something_that_is_not_prometheus_is_named():
    with PrometheusClient(URL, transport=answering(200, b"<html>Grafana</html>")) as client, \
            pytest.raises(PrometheusError) as raised:
        client.query("up")
    assert str(raised.value) == f"{URL}/api/v1/query answered with something that is not JSON: is this Prometheus' " \
                                "address?"


@pytest.mark.parametrize(("body", "problem"), [
    ({"status": "error", "error": "query timed out"}, "did not answer with a query result: query timed out"),
    ({"data": {}}, "did not answer with a query result (no status: success and data)"),
    ({"status": "success", "data": {"resultType": "matrix", "result": []}}, "with a 'matrix', not an instant vector"),
    ({"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}}]}}, "with a malformed sample"),
])
def test_a_malformed_answer_is_refused(body: dict[str, object], problem: str):
    with PrometheusClient(URL, transport=answering(200, body)) as client, pytest.raises(PrometheusError) as raised:
        client.query("up")
    assert problem in str(raised.value)


def test_an_unreachable_prometheus_is_named():
    url = f"http://127.0.0.1:{free_ports(1)[0]}"
    with PrometheusClient(url, timeout=2) as client, pytest.raises(PrometheusError) as raised:
        client.query("up")
    assert str(raised.value).startswith(f"cannot reach Prometheus at {url}: ")


@pytest.mark.parametrize("url", ["127.0.0.1:9090", "ftp://host", "http://", "http://h:x", "http://h:9090/?q=1"])
def test_a_url_that_is_not_an_http_base_url_is_refused(url: str):
    with pytest.raises(PrometheusError, match=r"^--prometheus "):
        check_url(url)


def test_a_base_url_loses_its_trailing_slash():
    assert check_url("https://prometheus.example/prefix/") == "https://prometheus.example/prefix"
