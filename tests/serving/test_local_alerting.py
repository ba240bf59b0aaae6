"""Alerts reach people, locally: a real platform rule fires in the local Prometheus, the local Alertmanager
routes it with the cluster's routing config, and a webhook on loopback receives it.

The end-to-end test takes about 45 s (bounded at 120 s): Prometheus needs a few seconds to scrape, the
rule's `for:` is cut to 5 s in a copy of its file, and Alertmanager waits the cluster's `group_wait` (30 s)
before the first notification of a group.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml
from prometheus_client import CollectorRegistry, Counter, start_http_server

from infra.components.monitoring import alertmanager_config
from infra.config.alerts import AlertsConfig
from infra.serving.local_alertmanager import (
    LocalAlertmanager,
    find_alertmanager,
    local_alertmanager_config,
    local_alerts,
)
from infra.serving.local_prometheus import LocalPrometheus, ScrapeTarget, prometheus_config
from tests.prerequisites import ALERTMANAGER_HINT, needs_tools

ROOT = Path(__file__).resolve().parents[2]
needs_alertmanager = needs_tools("prometheus", "promtool", "prometheus-alertmanager", hint=ALERTMANAGER_HINT)
ALERT = "ModelServerTargetDown"
E2E_TIMEOUT_S = 120.0

# A stack's routing, as a prod stack would write it (credentials aside: the local receivers are webhooks).
ROUTING = AlertsConfig.model_validate({
    "receivers": [
        {"name": "platform-pager", "type": "pagerduty", "routingKey": "[secret]"},
        {"name": "local-chat", "type": "slack", "apiUrl": "[secret]"},
        {"name": "platform-slack", "type": "slack", "apiUrl": "[secret]"},
    ],
    "routes": [{"team": "local", "severity": "warning", "receiver": "local-chat"},
               {"severity": "critical", "receiver": "platform-pager"}],
    "defaultReceiver": "platform-slack",
})


# -- the config, pure ------------------------------------------------------------------------------------


def test_locally_every_receiver_is_the_webhook_and_the_routes_are_the_clusters(tmp_path: Path):
    url = "http://127.0.0.1:9999/alerts"
    local = local_alertmanager_config(ROUTING, url, tmp_path)
    cluster = alertmanager_config(ROUTING)
    assert local["route"] == cluster["route"]
    assert local["inhibit_rules"] == cluster["inhibit_rules"]
    named = {r["name"]: r for r in local["receivers"]}
    assert set(named) == {r["name"] for r in cluster["receivers"]}
    assert all(r["webhook_configs"][0]["url"] == url for name, r in named.items() if name != "null")


def test_without_a_default_receiver_the_unrouted_alerts_reach_the_webhook_too(tmp_path: Path):
    local = local_alerts(AlertsConfig(), "http://127.0.0.1:9999/")
    assert local.default_receiver == "default" and [r.name for r in local.receivers] == ["default"]
    assert local_alerts(ROUTING, None) == AlertsConfig()


def test_prometheus_sends_alerts_to_the_local_alertmanager():
    target = ScrapeTarget(job="kserve", address="127.0.0.1:8080", metrics_path="/metrics", models=("digits",))
    config = prometheus_config([target], [], alertmanagers=["127.0.0.1:9093"])
    assert config["alerting"] == {"alertmanagers": [{"scheme": "http",
                                                     "static_configs": [{"targets": ["127.0.0.1:9093"]}]}]}
    assert "alerting" not in prometheus_config([target], [])


@needs_alertmanager
def test_amtool_accepts_the_local_config(tmp_path: Path):
    tools = find_alertmanager()
    manager = LocalAlertmanager(tmp_path, tools=tools)
    manager.config_file.parent.mkdir(parents=True, exist_ok=True)
    manager.config_file.write_text(yaml.safe_dump(local_alertmanager_config(ROUTING, "http://127.0.0.1:1/", tmp_path)))
    manager._check_config()


# -- end to end ------------------------------------------------------------------------------------------


class _Webhook(BaseHTTPRequestHandler):
    received: list[dict[str, Any]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.received.append(json.loads(body))  # type: ignore[attr-defined]
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A receiver on 127.0.0.1 that keeps every payload it gets."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Webhook)
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/alerts", server.received  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        thread.join()


def fast_rule_file(folder: Path) -> tuple[Path, dict[str, Any]]:
    """A copy of the inference rules with ModelServerTargetDown's `for:` cut to 5 s; the shipped file is
    untouched. Returns the copy and the rule as shipped."""
    source = ROOT / "infra/observability/rules/inference.rules.yaml"
    rules = yaml.safe_load(source.read_text())
    found = [r for g in rules["groups"] for r in g["rules"] if r.get("alert") == ALERT]
    assert len(found) == 1
    shipped = dict(found[0])
    found[0]["for"] = "5s"
    copy = folder / "inference.rules.yaml"
    copy.write_text(yaml.safe_dump(rules, sort_keys=False))
    return copy, shipped


@needs_alertmanager
@pytest.mark.integration
def test_a_stopped_model_server_pages_the_routed_receiver_with_labels_and_runbook(tmp_path: Path, webhook):
    url, received = webhook
    started = time.monotonic()
    # Stands in for the model server: a real /metrics endpoint with a model's series.
    registry = CollectorRegistry()
    Counter("ts_inference_requests", "requests", ["model_name"], registry=registry).labels("digits").inc()
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    target = ScrapeTarget(job="torchserve", address=f"127.0.0.1:{server.server_port}", metrics_path="/metrics",
                          models=("digits",))
    rule_file, shipped = fast_rule_file(tmp_path)
    manager = LocalAlertmanager(tmp_path / "alertmanager")
    prometheus = LocalPrometheus(tmp_path / "prometheus", rule_files=[rule_file], interval_s=1)
    groups: list[int | None] = []
    try:
        manager.start(local_alertmanager_config(ROUTING, url, manager.work_dir))
        groups.append(manager.process_group())
        manager.wait_ready()
        prometheus.start([target], alertmanagers=[manager.address])
        groups.append(prometheus.process_group())
        prometheus.wait_ready()
        prometheus.wait_targets_up()
        server.shutdown()  # the fault: the model server stops
        thread.join()
        deadline = started + E2E_TIMEOUT_S
        while not any(a["labels"].get("alertname") == ALERT for p in received for a in p["alerts"]):
            assert time.monotonic() < deadline, (
                f"no {ALERT} at the webhook after {E2E_TIMEOUT_S:.0f} s; alertmanager holds "
                f"{manager.alerts()}\n{manager.log_tail()}\n{prometheus.log_tail()}")
            time.sleep(0.5)
    finally:
        prometheus.stop()
        manager.stop()
        server.shutdown()
    payload = next(p for p in received if any(a["labels"].get("alertname") == ALERT for a in p["alerts"]))
    # team=local and severity=warning: the first route, the one the cluster would use.
    assert payload["receiver"] == "local-chat" and payload["status"] == "firing"
    alert = next(a for a in payload["alerts"] if a["labels"]["alertname"] == ALERT)
    assert alert["labels"]["severity"] == shipped["labels"]["severity"] == "warning"
    assert alert["labels"]["team"] == "local" and alert["labels"]["inferenceservice"] == "digits"
    assert alert["annotations"]["runbook"] == shipped["annotations"]["runbook"]
    assert "Prometheus cannot scrape the model server" in alert["annotations"]["summary"]
    assert time.monotonic() - started < E2E_TIMEOUT_S
    for pgid in groups:  # everything it started is gone
        assert pgid is not None
        assert not [p for p in psutil.process_iter(["pid"]) if _pgid(p.pid) == pgid]


def _pgid(pid: int) -> int | None:
    import os

    try:
        return os.getpgid(pid)
    except OSError:
        return None
