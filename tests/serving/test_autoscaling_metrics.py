"""The queries KEDA scales models on, evaluated by a real Prometheus over real model servers.

For each runtime, one real server (TorchServe 0.12 or the KServe ModelServer, serving the packaged models on
loopback) is scraped every second by Debian's Prometheus loading the platform's own rule files, with the labels a
team's PodMonitor gives (team and namespace `local`). The exact query a ScaledObject carries
(model_autoscaling.scaling_query) is asked through Prometheus' HTTP API: while the model is idle it answers one
sample, below the ScaledObject's threshold; while threads of this test keep requests in flight it rises above it.
Every generated query also passes `promtool check rules`.
"""

from __future__ import annotations

import math
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from infra.components.model_autoscaling import SCALING_SERIES, scaled_object_manifest, scaling_query
from infra.config.capacity import RUNTIME_METRICS
from infra.config.serving import ModelDeployment
from infra.observability.rules import rule_files
from infra.serving.catalog import MODEL_HANDLERS, Catalog
from infra.serving.kserve_process import KServeServer
from infra.serving.local_prometheus import LOCAL_NAMESPACE, LocalPrometheus, ScrapeTarget
from infra.serving.local_server import LocalServer, ServedModel
from infra.serving.package import package_models
from infra.serving.torchserve_process import TorchServeServer
from tests.prerequisites import JAVA_HINT, PROMETHEUS_HINT, needs_tools, tool
from tests.serving.conftest import running

MODEL = "digits"
JSON = {"Content-Type": "application/json"}
IMAGE = "registry.example.com/local/digits:1.0.0"
# Targets of the ScaledObjects under test: 2 requests in flight per replica, 5 requests per second per replica.
TARGETS = {"concurrency": 2, "requests-per-second": 5}
# Clients that each keep one request in flight: at most that many requests are in progress (client time aside).
LOAD_THREADS = 16
# A one-minute rate takes up to a minute to show a step in load in full.
LOAD_TIMEOUT_S = 45.0


def model(runtime: str, metric: str, target: float = 1) -> ModelDeployment:
    image = {"image": IMAGE} if runtime == "kserve" else {}
    return ModelDeployment.model_validate({"name": MODEL, "runtime": runtime, **image,
                                           "autoscaling": {"metric": metric, "target": target, "min": 1, "max": 4}})


def metrics_of(runtime: str) -> list[str]:
    """The KEDA metrics a model on this runtime may scale on."""
    return [m for m in SCALING_SERIES if RUNTIME_METRICS.get(m, runtime) == runtime]


def threshold(runtime: str, metric: str) -> float:
    """The threshold of the ScaledObject the team stack would create for the model."""
    manifest = scaled_object_manifest(LOCAL_NAMESPACE, model(runtime, metric, TARGETS[metric]), "http://prometheus",
                                      deployment=f"{MODEL}-predictor", scale_to_zero_allowed=False)
    assert manifest is not None
    return float(manifest["spec"]["triggers"][0]["metadata"]["threshold"])


# -- promtool accepts every query ---------------------------------------------------------------------------


@needs_tools("promtool", hint=PROMETHEUS_HINT)
def test_promtool_accepts_every_generated_scaling_query(tmp_path: Path):
    queries = [scaling_query(team, model(runtime, metric)) for team in ("vision", "search-team")
               for runtime in ("torchserve", "kserve") for metric in metrics_of(runtime)]
    assert len(queries) == 12
    rules = {"groups": [{"name": "scaling-queries", "rules": [
        {"record": f"aip_scaling_query_{index}", "expr": query} for index, query in enumerate(queries)]}]}
    path = tmp_path / "scaling.rules.yaml"
    path.write_text(yaml.safe_dump(rules))
    check = subprocess.run([tool("promtool", PROMETHEUS_HINT), "check", "rules", str(path)], capture_output=True,
                           text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"SUCCESS: {len(queries)} rules found" in check.stdout


@needs_tools("promtool", hint=PROMETHEUS_HINT)
def test_promtool_rejects_a_broken_query(tmp_path: Path):
    """The check above can fail: a query with an unbalanced selector is refused."""
    broken = scaling_query("vision", model("torchserve", "concurrency")).replace("}", "", 1)
    path = tmp_path / "broken.rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": [{"record": "aip_broken", "expr": broken}]}]}))
    check = subprocess.run([tool("promtool", PROMETHEUS_HINT), "check", "rules", str(path)], capture_output=True,
                           text=True, timeout=60)
    assert check.returncode != 0


# -- real servers, real Prometheus ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served() -> list[ServedModel]:
    catalog = Catalog(MODEL_HANDLERS)
    manifest = package_models(catalog=catalog)  # build/models, cached across runs like `aip serve`
    return [ServedModel(folder, catalog.runtime_dir, manifest.models[folder.name]) for folder in catalog.select()]


@pytest.fixture(params=["torchserve", "kserve"])
def scraped(request: pytest.FixtureRequest, served: list[ServedModel],
            tmp_path: Path) -> Iterator[tuple[LocalServer, LocalPrometheus]]:
    """One real server of the runtime and a Prometheus scraping it every second with the platform's rules."""
    runtime = request.param
    if runtime == "torchserve":
        tool("java", JAVA_HINT)
    tool("prometheus", PROMETHEUS_HINT)
    server: LocalServer = (TorchServeServer(served, tmp_path / "server") if runtime == "torchserve"
                           else KServeServer(served, tmp_path / "server"))
    prometheus = LocalPrometheus(tmp_path / "prometheus", rule_files=rule_files(), interval_s=1)
    # `running` stops the server and checks that none of its processes or ports outlive it.
    with running(server):
        try:
            prometheus.start([ScrapeTarget.of(server, [m.name for m in served])])
            prometheus.wait_ready()
            prometheus.wait_targets_up()
            yield server, prometheus
        finally:
            prometheus.stop()


def samples(prometheus: LocalPrometheus, expr: str) -> list[dict]:
    answer = httpx.get(f"{prometheus.url}/api/v1/query", params={"query": expr}, trust_env=False, timeout=10).json()
    assert answer["status"] == "success", answer
    return list(answer["data"]["result"])


def query(prometheus: LocalPrometheus, expr: str) -> float:
    """The query's value: KEDA's Prometheus scaler takes exactly one sample and fails on more."""
    result = samples(prometheus, expr)
    assert len(result) == 1, result
    return float(result[0]["value"][1])


def wait_for_series(prometheus: LocalPrometheus, record: str, timeout: float = 20.0) -> None:
    """Until the recording rule has a sample for the model (two scrapes of its counters, one rule evaluation)."""
    deadline = time.monotonic() + timeout
    selector = f'{record}{{namespace="{LOCAL_NAMESPACE}", inferenceservice="{MODEL}"}}'
    while not samples(prometheus, selector):
        assert time.monotonic() < deadline, f"no {selector} after {timeout:.0f} s"
        time.sleep(0.3)


class Load:
    """Threads that each keep one inference request in flight until stopped; every answer must be a 200."""

    def __init__(self, server: LocalServer, threads: int):
        case = next(e for e in Catalog(MODEL_HANDLERS).load(MODEL).examples if e.name == "single-image")
        self._body, self._url = case.body(), server.v1_url(MODEL)
        self._headers = {**JSON, **server.request_headers()}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.answers: dict[int, int] = {}
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        with httpx.Client(timeout=30, trust_env=False) as http:
            while not self._stop.is_set():
                status = http.post(self._url, content=self._body, headers=self._headers).status_code
                with self._lock:
                    self.answers[status] = self.answers.get(status, 0) + 1

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)


@pytest.mark.integration
def test_the_scaling_query_is_below_its_threshold_idle_and_above_it_under_load(
        scraped: tuple[LocalServer, LocalPrometheus]):
    server, prometheus = scraped
    runtime = server.runtime
    queries = {metric: scaling_query(LOCAL_NAMESPACE, model(runtime, metric)) for metric in metrics_of(runtime)}
    limits = {metric: threshold(runtime, metric) for metric in TARGETS}
    # Never asked: the server exports no request series yet; each query still answers one sample, 0.
    assert {metric: query(prometheus, expr) for metric, expr in queries.items()} == dict.fromkeys(queries, 0.0)
    # Idle after one request: the recorded series exist now (its counters appeared with it, so their rate is 0)
    # and read below the thresholds.
    with Load(server, 1) as one:
        while not one.answers:
            time.sleep(0.05)
    for metric in TARGETS:
        wait_for_series(prometheus, SCALING_SERIES[metric].record)
        assert query(prometheus, queries[metric]) < limits[metric], metric

    seen: dict[str, float] = {}
    with Load(server, LOAD_THREADS) as load:
        deadline = time.monotonic() + LOAD_TIMEOUT_S
        while time.monotonic() < deadline:
            seen = {metric: query(prometheus, expr) for metric, expr in queries.items()}
            if all(seen[metric] > limits[metric] for metric in TARGETS) and all(v > 0 for v in seen.values()):
                break
            time.sleep(0.5)
    assert set(load.answers) == {200}, load.answers
    assert all(seen[metric] > limits[metric] for metric in TARGETS), (runtime, seen, limits)
    # Requests in flight cannot exceed the clients keeping them there (Little's law over the last minute).
    assert seen["concurrency"] <= LOAD_THREADS, seen
    # The latency a model may scale on (TorchServe's queue time, KServe's p95) is a real number of milliseconds.
    latency = next(metric for metric in queries if metric not in TARGETS)
    assert math.isfinite(seen[latency]) and seen[latency] > 0, seen
