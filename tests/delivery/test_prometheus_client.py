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


@pytest.mark.parametrize("url", ["http://prometheus\n", "http://prom etheus:9090", "http://h\x1b[31m:9090", "http://h:0",
                                 "http://[::1", "http://user:pw@[::1"])
def test_a_url_httpx_would_refuse_later_is_refused_up_front(url: str):
    with pytest.raises(PrometheusError, match=r"^--prometheus ") as raised:
        check_url(url)
    assert "\n" not in str(raised.value) and "\x1b" not in str(raised.value)


def test_a_password_in_the_url_never_shows_in_a_message():
    url = f"http://reader:s3cret@127.0.0.1:{free_ports(1)[0]}"
    with PrometheusClient(url, timeout=2) as client, pytest.raises(PrometheusError) as raised:
        client.query("up")
    assert "s3cret" not in str(raised.value)
    assert "http://reader:***@127.0.0.1:" in str(raised.value)
    with pytest.raises(PrometheusError) as refused:
        check_url("ftp://reader:s3cret@host")
    assert "s3cret" not in str(refused.value)


@pytest.mark.parametrize("series", [
    {"metric": ["track"], "value": [1767225600.0, "1"]},  # labels not a mapping
    {"metric": {"model_version": 5}, "value": [1767225600.0, "1"]},  # a label value that is no string
    {"metric": {"model_version": None}, "value": [1767225600.0, "1"]},
    {"metric": {}, "value": "12"},  # a bare string, which would unpack into two characters
    {"metric": {}, "value": [1767225600.0, True]},  # the API writes values as strings
    {"metric": {}, "value": [1767225600.0, 1.5]},
    {"metric": {}, "value": [1767225600.0, "1", "2"]},
    "a string",
])
def test_every_sample_not_in_the_api_form_is_malformed(series: object):
    body = {"status": "success", "data": {"resultType": "vector", "result": [series]}}
    with PrometheusClient(URL, transport=answering(200, body)) as client, pytest.raises(PrometheusError) as raised:
        client.query("up")
    assert "with a malformed sample: " in str(raised.value)


def test_a_vector_without_a_result_list_is_named_as_such():
    body = {"status": "success", "data": {"resultType": "vector", "result": None}}
    with PrometheusClient(URL, transport=answering(200, body)) as client, pytest.raises(PrometheusError) as raised:
        client.query("up")
    assert str(raised.value) == f"Prometheus at {URL} answered 'up' with a vector without a result list"


@pytest.mark.parametrize(("status", "body"), [
    (200, {"status": "error", "error": "\x1b[31mred\x1b[0m [bold]x[/bold]\nsecond line" + "E" * 5000}),
    (200, {"status": "error", "error": {"nested": ["E"] * 5000}}),
    (400, {"status": "error", "error": "\x1b]0;title\x07" + "E" * 5000}),
    (503, ("\x1b[2J<html>" + "x" * 5000 + "</html>").encode()),
])
def test_what_a_server_says_is_quoted_on_one_short_line_without_control_characters(status: int, body: object):
    with PrometheusClient(URL, transport=answering(status, body)) as client, pytest.raises(PrometheusError) as raised:
        client.query("up")
    message = str(raised.value)
    assert not any(ord(char) < 32 or 0x7f <= ord(char) <= 0x9f for char in message), message
    assert len(message) < 500


def test_a_redirect_names_where_it_points():
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": "https://sso.example/login"})

    with PrometheusClient(URL, transport=httpx.MockTransport(handle)) as client, \
            pytest.raises(PrometheusError) as raised:
        client.query("up")
    assert str(raised.value).endswith("answered HTTP 302 to http://prometheus.example:9090/api/v1/query: Found "
                                      "(redirected to https://sso.example/login)")
