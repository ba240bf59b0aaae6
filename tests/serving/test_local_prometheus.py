"""`aip serve --with-prometheus`: the generated prometheus.yml, and the real Prometheus scraping a real server."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
import yaml
from prometheus_client import CollectorRegistry, Counter, start_http_server

from infra.serving.kserve_process import KServeServer
from infra.serving.local_prometheus import (
    INSTALL_HINT,
    LocalPrometheus,
    PrometheusFailed,
    ScrapeTarget,
    find_prometheus,
    prometheus_config,
    render_config,
    target_labels,
)
from infra.serving.manifest import Manifest
from infra.serving.problems import ServingError
from infra.serving.processes import free_ports, port_is_free
from infra.serving.torchserve_process import TorchServeServer
from tests.prerequisites import PROMETHEUS_HINT, needs_tools
from tests.serving.conftest import processes_mentioning

ROOT = Path(__file__).resolve().parents[2]
needs_prometheus = needs_tools("prometheus", "promtool", hint=PROMETHEUS_HINT)

TS = ScrapeTarget(job="torchserve", address="127.0.0.1:8082", metrics_path="/metrics", models=("digits", "ranker"))
KS = ScrapeTarget(job="kserve", address="127.0.0.1:8080", metrics_path="/metrics", models=("digits",))


def platform_rule_files() -> list[Path]:
    from infra.observability.rules import rule_files

    files = list(rule_files())
    assert files, "no rule file under infra/observability/rules/"
    return files


def rule_group_names(files: list[Path]) -> set[str]:
    return {group["name"] for f in files for group in yaml.safe_load(f.read_text())["groups"]}


# -- the config, pure ------------------------------------------------------------------------------------


def test_one_job_per_server_scraping_its_metrics_on_loopback_with_every_rule_file(tmp_path: Path):
    rules = [tmp_path / "a.rules.yaml", tmp_path / "b.rules.yaml"]
    config = prometheus_config([TS, KS], rules, interval_s=5)
    assert config["global"] == {"scrape_interval": "5s", "scrape_timeout": "5s", "evaluation_interval": "5s"}
    assert config["rule_files"] == [str(r) for r in rules]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"torchserve", "kserve"}
    assert jobs["torchserve"]["metrics_path"] == "/metrics" and jobs["torchserve"]["scheme"] == "http"
    assert jobs["torchserve"]["static_configs"] == [{"targets": ["127.0.0.1:8082"], "labels": target_labels(TS)}]
    assert jobs["kserve"]["static_configs"][0]["targets"] == ["127.0.0.1:8080"]


def test_relative_rule_files_become_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Prometheus would resolve them against the config's folder, a temporary work dir."""
    monkeypatch.chdir(tmp_path)
    assert prometheus_config([TS], [Path("x.rules.yaml")])["rule_files"] == [str(tmp_path / "x.rules.yaml")]


@pytest.mark.parametrize(("models", "inferenceservice"), [(("digits",), "digits"),
                                                           (("digits", "ranker"), "digits+ranker")])
def test_target_labels_mimic_a_team_pod_monitor(models: tuple[str, ...], inferenceservice: str):
    """A pod serves one model in the cluster; the one local server stands for all of them."""
    target = ScrapeTarget(job="kserve", address="127.0.0.1:1", metrics_path="/metrics", models=models)
    assert target_labels(target) == {"team": "local", "namespace": "local", "pod": "local-kserve",
                                     "container": "kserve-container", "inferenceservice": inferenceservice}


def test_extra_target_labels_are_added_and_win():
    """Two versions of one model, scraped as the stable and canary predictors of one InferenceService."""
    canary = ScrapeTarget(job="vision-canary", address="127.0.0.1:2", metrics_path="/metrics", models=("digits",),
                          labels={"team": "vision", "namespace": "vision", "track": "canary",
                                  "model_version": "0123456789abcdef"})
    assert target_labels(canary) == {"team": "vision", "namespace": "vision", "pod": "local-vision-canary",
                                     "container": "kserve-container", "inferenceservice": "digits",
                                     "track": "canary", "model_version": "0123456789abcdef"}
    (job,) = prometheus_config([canary], [])["scrape_configs"]
    assert job["static_configs"][0]["labels"] == target_labels(canary)


def test_a_bad_extra_label_name_is_refused():
    bad = ScrapeTarget(job="torchserve", address="127.0.0.1:1", metrics_path="/metrics", models=("digits",),
                       labels={"model-version": "x", "__address__": "y"})
    with pytest.raises(ValueError) as raised:
        prometheus_config([bad], [])
    assert "'model-version' is not a label name" in str(raised.value)
    assert "'__address__' is not a label name" in str(raised.value)


def test_inferenceservice_comes_from_each_series_model_name():
    (relabel,) = prometheus_config([TS], [])["scrape_configs"][0]["metric_relabel_configs"]
    assert relabel == {"source_labels": ["model_name"], "regex": "(.+)", "target_label": "inferenceservice",
                       "replacement": "$1", "action": "replace"}


def test_every_problem_is_reported_at_once():
    empty = ScrapeTarget(job="torchserve", address="127.0.0.1:1", metrics_path="/metrics", models=())
    with pytest.raises(ValueError) as raised:
        prometheus_config([TS, empty], [], interval_s=0)
    message = str(raised.value)
    assert "interval_s must be at least 1, not 0" in message
    assert "job names must be distinct: torchserve, torchserve" in message
    assert "target torchserve serves no model" in message
    with pytest.raises(ValueError, match="no scrape target"):
        prometheus_config([], [])


@pytest.mark.parametrize("runtime", ["torchserve", "kserve"])
def test_the_target_is_the_port_each_runtime_serves_metrics_on(runtime: str, tmp_path: Path):
    """TorchServe on its own metrics listener, KServe on its HTTP port (nothing is started here)."""
    server = TorchServeServer([], tmp_path) if runtime == "torchserve" else KServeServer([], tmp_path)
    target = ScrapeTarget.of(server, ["digits"])
    port = server.listeners.metrics_port if isinstance(server, TorchServeServer) else server.port
    assert target == ScrapeTarget(job=runtime, address=f"127.0.0.1:{port}", metrics_path="/metrics",
                                  models=("digits",))


def test_a_missing_prometheus_names_the_package(tmp_path: Path):
    with pytest.raises(ServingError, match=re.escape(INSTALL_HINT)) as raised:
        find_prometheus(path=str(tmp_path))
    assert "`prometheus` and `promtool`" in str(raised.value)


def test_aip_serve_with_prometheus_exits_2_before_packaging_when_prometheus_is_missing(tmp_path: Path):
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}
    run = subprocess.run([sys.executable, "-m", "infra.cli", "serve", "--with-prometheus", "--models", "digits",
                          "--out", str(tmp_path / "models")], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 2, run.stderr
    assert INSTALL_HINT in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "models").exists()


@needs_prometheus
def test_promtool_accepts_the_config_with_the_platform_rules(tmp_path: Path):
    config = tmp_path / "prometheus.yml"
    config.write_text(render_config(prometheus_config([TS, KS], platform_rule_files())))
    check = subprocess.run(["promtool", "check", "config", str(config)], capture_output=True, text=True,
                           check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS" in check.stdout + check.stderr


@needs_prometheus
def test_a_broken_rule_file_is_rejected_before_prometheus_starts(tmp_path: Path):
    broken = tmp_path / "broken.rules.yaml"
    broken.write_text("groups:\n  - name: broken\n    rules:\n      - alert: Broken\n        expr: sum(\n")
    prometheus = LocalPrometheus(tmp_path / "prometheus", rule_files=[broken])
    with pytest.raises(PrometheusFailed, match="promtool check config rejected"):
        prometheus.start([TS])
    assert not prometheus.running() and prometheus.port == 0
    prometheus.stop()


# -- the real Prometheus -------------------------------------------------------------------------------


@pytest.fixture
def exporter() -> Iterator[str]:
    """A real /metrics endpoint on loopback with a TorchServe-like counter, labelled by model_name."""
    registry = CollectorRegistry()
    requests = Counter("ts_inference_requests", "requests", ["model_name", "model_version"], registry=registry)
    requests.labels("digits", "v1").inc()
    requests.labels("ranker", "v1").inc()
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        yield f"127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()


@needs_prometheus
@pytest.mark.integration
def test_a_down_target_fails_with_its_error_and_series_carry_the_cluster_labels(tmp_path: Path, exporter: str):
    rules = tmp_path / "local.rules.yaml"
    rules.write_text("groups:\n  - name: local\n    rules:\n      - record: inferenceservice:requests:sum\n"
                     "        expr: sum by (namespace, inferenceservice) (ts_inference_requests_total)\n")
    closed = free_ports(1)[0]
    targets = [ScrapeTarget("torchserve", exporter, "/metrics", ("digits", "ranker")),
               ScrapeTarget("kserve", f"127.0.0.1:{closed}", "/metrics", ("digits",))]
    prometheus = LocalPrometheus(tmp_path / "prometheus", rule_files=[rules], interval_s=1)
    try:
        prometheus.start(targets)
        prometheus.wait_ready()
        _wait_until_scraped(prometheus)
        with pytest.raises(PrometheusFailed) as raised:
            prometheus.wait_targets_up(timeout=1)
        message = str(raised.value)
        assert "timed out after 1 s waiting for every scrape target to be up" in message
        assert f"kserve http://127.0.0.1:{closed}/metrics: down (" in message
        assert "torchserve" in message and ": up" in message
        series = _query(prometheus, 'ts_inference_requests_total{job="torchserve"}', count=2)
        assert {s["metric"]["inferenceservice"] for s in series} == {"digits", "ranker"}
        assert all(s["metric"]["team"] == "local" and s["metric"]["namespace"] == "local" for s in series)
        recorded = _query(prometheus, "inferenceservice:requests:sum", count=2)
        assert {s["metric"]["inferenceservice"] for s in recorded} == {"digits", "ranker"}
        down = _query(prometheus, 'up{team="local", namespace="local"} == 0', count=1)
        assert down[0]["metric"]["inferenceservice"] == "digits" and down[0]["metric"]["job"] == "kserve"
    finally:
        pgid = prometheus.process_group()
        prometheus.stop()
    assert pgid is not None and not _alive(pgid)
    assert port_is_free(prometheus.port)


def _wait_until_scraped(prometheus: LocalPrometheus, timeout: float = 30) -> None:
    """Until every target has been scraped once (Prometheus applies new targets about 5 s after start)."""
    deadline = time.monotonic() + timeout
    while True:
        targets = prometheus.active_targets()
        if len(targets) == len(prometheus.targets) and all(t["health"] in ("up", "down") for t in targets):
            return
        assert time.monotonic() < deadline, targets
        time.sleep(0.2)


def _query(prometheus: LocalPrometheus, expr: str, *, count: int, timeout: float = 10) -> list[dict]:
    """The query's series once there are `count` of them (a rule is evaluated one interval after a scrape)."""
    deadline = time.monotonic() + timeout
    while True:
        answer = httpx.get(f"{prometheus.url}/api/v1/query", params={"query": expr}, trust_env=False).json()
        series = answer["data"]["result"]
        if len(series) >= count or time.monotonic() > deadline:
            assert len(series) == count, answer
            return series
        time.sleep(0.3)


def _alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def out(tmp_path: Path, packaged: tuple[Path, Manifest]) -> Path:
    """A copy of the session's build, so `aip serve` only checks its cache."""
    copy = tmp_path / "models"
    shutil.copytree(packaged[0], copy)
    return copy


@needs_prometheus
@pytest.mark.integration
def test_aip_serve_with_prometheus_shows_the_server_as_a_healthy_target_and_stops_everything(out: Path):
    """The CLI as a user runs it: targets up, the platform's rule groups loaded, SIGTERM leaves nothing."""
    serve = subprocess.Popen([sys.executable, "-m", "infra.cli", "serve", "--with-prometheus", "--models", "digits",
                              "--out", str(out)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    prometheus_pids: set[int] = set()
    try:
        assert serve.stdout is not None and serve.stderr is not None
        seen = ""
        while "Ctrl-C stops" not in seen:
            line = serve.stdout.readline()
            if not line:
                pytest.fail(seen + serve.stderr.read())
            seen += line
        found = re.search(r"GET  (http://127\.0\.0\.1:(\d+))/\S*targets\s", seen)
        assert found, seen
        base, port = found.group(1), int(found.group(2))
        assert f"GET  {base}/  (UI)" in seen and re.search(rf"GET  {base}/\S*alerts\s", seen), seen
        prometheus_pids = {c.pid for c in psutil.net_connections("tcp") if c.laddr and c.laddr.port == port and c.pid}
        assert prometheus_pids, f"nothing listens on {base}"

        with httpx.Client(base_url=base, trust_env=False, timeout=10) as client:
            targets = client.get("/api/v1/targets").json()["data"]["activeTargets"]
            assert [t["health"] for t in targets] == ["up"], targets
            assert targets[0]["labels"] | {"instance": "-"} == {
                "job": "torchserve", "instance": "-", "team": "local", "namespace": "local",
                "pod": "local-torchserve", "container": "kserve-container", "inferenceservice": "digits"}
            groups = {g["name"] for g in client.get("/api/v1/rules").json()["data"]["groups"]}
            assert groups == rule_group_names(platform_rule_files())
            up = client.get("/api/v1/query", params={"query": 'up{job="torchserve",namespace="local"}'}).json()
            assert [s["value"][1] for s in up["data"]["result"]] == ["1"]

        serve.send_signal(signal.SIGTERM)
        assert serve.wait(timeout=90) == 0
        assert "stopping" in serve.stderr.read()
    finally:
        if serve.poll() is None:
            serve.kill()
    assert not any(psutil.pid_exists(pid) for pid in prometheus_pids)
    assert port_is_free(port)
    assert not processes_mentioning(str(out / ".serve"))
    assert not (out / ".serve").exists()
