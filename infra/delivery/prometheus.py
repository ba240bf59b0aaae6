"""A small client of Prometheus' HTTP API: instant queries, each failure one clear sentence.

Only `GET /api/v1/query` is used: canary analysis asks for a handful of values at one instant.
https://prometheus.io/docs/prometheus/latest/querying/api/#instant-queries
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import httpx

from infra.delivery.text import quoted, shown

DEFAULT_TIMEOUT_S = 10.0
# An option's value is quoted in a message up to this length.
_MAX_SHOWN = 300


class PrometheusError(Exception):
    """Prometheus could not be asked, or its answer was not a usable query result."""


@dataclass(frozen=True)
class Sample:
    """One series of an instant vector: its labels and its value (NaN and infinities are dropped)."""

    labels: Mapping[str, str]
    value: float


def check_url(url: str) -> str:
    """The base URL without a trailing slash; PrometheusError unless it is http(s)://host[:port][/prefix]."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError on a port that is not a number)
        # What urlsplit lets through (control characters) httpx refuses only when the first query is sent.
        httpx.URL(url)
        if any(char.isspace() for char in url):
            raise ValueError("whitespace")
    except (ValueError, httpx.InvalidURL):
        raise PrometheusError(f"--prometheus {_shown(url)}: not a URL (e.g. http://127.0.0.1:9090)") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PrometheusError(f"--prometheus {_shown(url)}: must be an http:// or https:// URL with a host "
                              "(e.g. http://127.0.0.1:9090)")
    if parts.port == 0:
        raise PrometheusError(f"--prometheus {_shown(url)}: port 0 is not a port to connect to")
    if parts.query or parts.fragment:
        raise PrometheusError(f"--prometheus {_shown(url)}: must not have a query or fragment")
    return url.rstrip("/")


def without_password(url: str) -> str:
    """The URL as messages and reports show it: a password in it (basic auth) is masked."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
    except ValueError:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return parts._replace(netloc=f"{parts.username}:***@{host}").geturl()


def _shown(url: str) -> str:
    return shown(without_password(url), _MAX_SHOWN)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class PrometheusClient:
    """Instant queries against one Prometheus (a base URL, with a path prefix if it is served under one).

    Args:
        url: e.g. `http://127.0.0.1:9090` (a `kubectl port-forward` to the platform's Prometheus).
        timeout: Seconds per request.
        transport: For tests: an httpx transport that answers instead of the network.
    """

    def __init__(self, url: str, *, timeout: float = DEFAULT_TIMEOUT_S, transport: httpx.BaseTransport | None = None):
        self.url = check_url(url)
        # Messages name Prometheus by this form, never with a password the URL may carry.
        self.shown_url = without_password(self.url)
        host = urlsplit(self.url).hostname or ""
        # A proxy from the environment must never see loopback traffic (a port-forward); elsewhere it may be needed.
        self._client = httpx.Client(timeout=timeout, trust_env=not _is_loopback(host), transport=transport)

    def __enter__(self) -> PrometheusClient:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def query(self, expr: str) -> list[Sample]:
        """The instant vector `expr` evaluates to now; PrometheusError when it cannot be had."""
        endpoint = f"{self.url}/api/v1/query"
        try:
            answer = self._client.get(endpoint, params={"query": expr})
        except httpx.TimeoutException:
            raise PrometheusError(f"Prometheus at {self.shown_url} did not answer within "
                                  f"{self._client.timeout.read:g} s") from None
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise PrometheusError(f"cannot reach Prometheus at {self.shown_url}: "
                                  f"{quoted(exc or type(exc).__name__)}") from None
        body = _json(answer, self.shown_url)
        if answer.status_code != 200:
            detail = body.get("error") if isinstance(body, dict) else None
            text = detail or answer.text.strip() or answer.reason_phrase
            moved = answer.headers.get("location") if answer.is_redirect else None
            raise PrometheusError(f"Prometheus at {self.shown_url} answered HTTP {answer.status_code} to "
                                  f"{self.shown_url}/api/v1/query: {quoted(text)}"
                                  + (f" (redirected to {quoted(without_password(moved))})" if moved else ""))
        return _vector(body, self.shown_url, expr)


def _json(answer: httpx.Response, url: str) -> Any:
    try:
        return answer.json()
    except ValueError:
        if answer.status_code == 200:
            raise PrometheusError(f"{url}/api/v1/query answered with something that is not JSON: is this "
                                  "Prometheus' address?") from None
        return None


def _vector(body: Any, url: str, expr: str) -> list[Sample]:
    if not isinstance(body, dict) or body.get("status") != "success" or not isinstance(body.get("data"), dict):
        error = body.get("error") if isinstance(body, dict) else None
        raise PrometheusError(f"Prometheus at {url} did not answer with a query result"
                              + (f": {quoted(error)}" if error else " (no status: success and data)"))
    data = body["data"]
    if data.get("resultType") != "vector":
        raise PrometheusError(f"Prometheus at {url} answered {expr!r} with a {quoted(data.get('resultType'))!r}, "
                              "not an instant vector")
    if not isinstance(data.get("result"), list):
        raise PrometheusError(f"Prometheus at {url} answered {expr!r} with a vector without a result list")
    samples = []
    for series in data["result"]:
        sample = _sample(series)
        if sample is None:
            raise PrometheusError(f"Prometheus at {url} answered {expr!r} with a malformed sample: "
                                  f"{quoted(series)}")
        if math.isfinite(sample.value):
            samples.append(sample)
    return samples


def _sample(series: Any) -> Sample | None:
    """One series of the result, None unless it has the API's form: string labels, a [time, "value"] pair."""
    if not isinstance(series, dict):
        return None
    labels, pair = series.get("metric"), series.get("value")
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        return None
    # The API writes a sample's value as a string, so that NaN and infinities survive JSON.
    if not isinstance(pair, list) or len(pair) != 2 or not isinstance(pair[1], str):
        return None
    try:
        value = float(pair[1])
    except ValueError:
        return None
    return Sample(labels=dict(labels), value=value)
