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

DEFAULT_TIMEOUT_S = 10.0
# An error body is quoted in the message up to this length.
_MAX_QUOTED = 300


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
    except ValueError:
        raise PrometheusError(f"--prometheus {url!r}: not a URL (e.g. http://127.0.0.1:9090)") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PrometheusError(f"--prometheus {url!r}: must be an http:// or https:// URL with a host "
                              "(e.g. http://127.0.0.1:9090)")
    if parts.query or parts.fragment:
        raise PrometheusError(f"--prometheus {url!r}: must not have a query or fragment")
    return url.rstrip("/")


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
            raise PrometheusError(f"Prometheus at {self.url} did not answer within "
                                  f"{self._client.timeout.read:g} s") from None
        except httpx.HTTPError as exc:
            raise PrometheusError(f"cannot reach Prometheus at {self.url}: {exc or type(exc).__name__}") from None
        body = _json(answer)
        if answer.status_code != 200:
            detail = body.get("error") if isinstance(body, dict) else None
            quoted = detail or answer.text[:_MAX_QUOTED].strip() or answer.reason_phrase
            raise PrometheusError(f"Prometheus at {self.url} answered HTTP {answer.status_code} to {endpoint}: "
                                  f"{quoted}")
        return _vector(body, self.url, expr)


def _json(answer: httpx.Response) -> Any:
    try:
        return answer.json()
    except ValueError:
        if answer.status_code == 200:
            raise PrometheusError(f"{answer.request.url.copy_with(query=None)} answered with something that is not "
                                  "JSON: is this Prometheus' address?") from None
        return None


def _vector(body: Any, url: str, expr: str) -> list[Sample]:
    if not isinstance(body, dict) or body.get("status") != "success" or not isinstance(body.get("data"), dict):
        error = body.get("error") if isinstance(body, dict) else None
        raise PrometheusError(f"Prometheus at {url} did not answer with a query result"
                              + (f": {error}" if error else " (no status: success and data)"))
    data = body["data"]
    if data.get("resultType") != "vector" or not isinstance(data.get("result"), list):
        raise PrometheusError(f"Prometheus at {url} answered {expr!r} with a {data.get('resultType')!r}, "
                              "not an instant vector")
    samples = []
    for series in data["result"]:
        try:
            labels, (_, text) = series["metric"], series["value"]
            value = float(text)
        except (KeyError, TypeError, ValueError):
            raise PrometheusError(f"Prometheus at {url} answered {expr!r} with a malformed sample: "
                                  f"{str(series)[:_MAX_QUOTED]}") from None
        if math.isfinite(value):
            samples.append(Sample(labels=dict(labels), value=value))
    return samples
