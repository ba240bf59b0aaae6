"""The platform's alert and recording rules: accepted and unit-tested by promtool, following the label
conventions (docs/observability.md), valid as PrometheusRule objects, and reading only series that exist.

promtool comes from Debian's prometheus package (`make install` installs it). Without it the promtool checks
skip, saying so, except in CI (`CI` set), where they fail.
"""

from __future__ import annotations

import functools
import re
import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from infra.observability.known_series import unknown_series
from infra.observability.promql import metric_names, output_labels
from infra.observability.rules import (
    RULES_DIR,
    RuleFileError,
    alerting_rules,
    load_groups,
    object_name,
    prometheus_rule_specs,
    recorded_labels,
    recorded_metrics,
    rule_expressions,
    rule_files,
)
from tests.crd_schemas import validate_custom_resource
from tests.prerequisites import PROMETHEUS_HINT, tool

TESTS_DIR = Path(__file__).resolve().parent / "rules"
SEVERITIES = {"critical", "warning", "info"}
ANNOTATIONS = {"summary", "description", "runbook"}
PLATFORM_TEAM = "platform"
# level:metric:operations, the metric named for the platform (https://prometheus.io/docs/practices/rules/).
RECORD_NAME = re.compile(r"^[a-z_]+:aip_[a-z0-9_]+:[a-z0-9_]+$")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def promtool() -> str:
    return tool("promtool", PROMETHEUS_HINT)


def unit_test_files() -> list[Path]:
    return sorted(TESTS_DIR.glob("*.test.yaml"))


def load_tests(path: Path) -> dict[str, Any]:
    return yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


# Read once: many parametrized checks below look at the same rules.
ALERTS = alerting_rules()
EXPRESSIONS = rule_expressions()
RECORDED = recorded_labels()


def alert_id(rule: dict[str, Any]) -> str:
    return f"{rule['alert']}-{rule.get('labels', {}).get('severity', 'no-severity')}"


# -- promtool ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", rule_files(), ids=lambda p: p.name)
def test_promtool_accepts_the_rule_file(path: Path):
    check = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS" in check.stdout


@pytest.mark.parametrize("path", unit_test_files(), ids=lambda p: p.name)
def test_promtool_unit_tests_pass(path: Path):
    # Test files name their rule files relative to themselves.
    run = subprocess.run([promtool(), "test", "rules", path.name], cwd=path.parent, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr


def test_every_rule_file_is_unit_tested_and_every_test_file_tests_one():
    tested: set[Path] = set()
    for path in unit_test_files():
        named = {(path.parent / name).resolve() for name in load_tests(path)["rule_files"]}
        assert named, f"{path.name} names no rule file"
        assert all(p.is_file() and p.parent == RULES_DIR for p in named), f"{path.name}: {sorted(named)}"
        tested |= named
    assert tested == set(rule_files())


# -- what the unit tests cover ------------------------------------------------------------------------------


@functools.cache
def alert_cases() -> tuple[dict[str, set[str]], set[str]]:
    """(alert name -> severities some test expects it to fire with, alert names some test expects silent)."""
    firing: dict[str, set[str]] = defaultdict(set)
    silent: set[str] = set()
    for path in unit_test_files():
        for case in load_tests(path)["tests"]:
            for check in case.get("alert_rule_test", []):
                expected = check.get("exp_alerts") or []
                if expected:
                    firing[check["alertname"]] |= {alert["exp_labels"].get("severity") for alert in expected}
                else:
                    silent.add(check["alertname"])
    return firing, silent


@pytest.mark.parametrize("rule", ALERTS, ids=alert_id)
def test_every_alert_has_a_firing_and_a_silent_case(rule: dict[str, Any]):
    firing, silent = alert_cases()
    assert rule["labels"]["severity"] in firing.get(rule["alert"], set()), \
        f"no test expects {rule['alert']} to fire with severity {rule['labels']['severity']}"
    assert rule["alert"] in silent, f"no test expects {rule['alert']} to stay silent"


def test_the_coverage_check_reads_the_unit_test_files():
    firing, silent = alert_cases()
    assert firing["InferenceErrorRatioHigh"] == {"warning", "critical"}
    assert "InferenceErrorRatioHigh" in silent
    assert set(firing) <= {rule["alert"] for rule in ALERTS}, "a test names an alert no rule defines"


# -- label conventions (docs/observability.md) --------------------------------------------------------------


@pytest.mark.parametrize("rule", ALERTS, ids=alert_id)
def test_alert_follows_the_label_conventions(rule: dict[str, Any]):
    labels, annotations = rule.get("labels", {}), rule.get("annotations", {})
    assert labels.get("severity") in SEVERITIES
    if "team" in labels:
        # A static team is the platform's: a team-level alert takes its team from its series instead.
        assert labels["team"] == PLATFORM_TEAM
    else:
        assert "team" in output_labels(str(rule["expr"]), RECORDED), \
            f"{rule['alert']} sets no team and its expression does not keep one: group by team or label_replace it"
    missing = {key for key in ANNOTATIONS if not str(annotations.get(key, "")).strip()}
    assert not missing, f"{rule['alert']} lacks annotations {sorted(missing)}"


def test_alerts_of_one_name_differ_by_severity():
    seen = [alert_id(rule) for rule in ALERTS]
    assert len(seen) == len(set(seen))


def test_recorded_metrics_follow_the_naming_convention():
    names = recorded_metrics()
    assert {"team:aip_inference_error_ratio:rate5m", "gpu:aip_gpu_utilization:avg5m"} <= names
    assert [name for name in names if not RECORD_NAME.match(name)] == []


def test_group_names_are_unique():
    names = [group["name"] for path in rule_files() for group in load_groups(path)]
    assert len(names) == len(set(names))


# -- PrometheusRule objects ---------------------------------------------------------------------------------


def prometheus_rule(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
            "metadata": {"name": name, "namespace": "monitoring"}, "spec": spec}


def test_one_prometheus_rule_per_file_with_its_groups():
    specs = prometheus_rule_specs()
    assert sorted(specs) == sorted(object_name(path) for path in rule_files())
    assert specs["aip-inference-rules"] == {"groups": load_groups(RULES_DIR / "inference.rules.yaml")}
    assert all(DNS_LABEL.match(name) for name in specs)


def test_prometheus_rules_match_the_crd():
    for name, spec in prometheus_rule_specs().items():
        validate_custom_resource(prometheus_rule(name, spec))


def test_the_crd_check_rejects_an_unknown_rule_field():
    spec = prometheus_rule_specs()["aip-gpu-rules"]
    broken = {"groups": [{**spec["groups"][0], "rules": [{**spec["groups"][0]["rules"][0], "summary": "x"}]}]}
    with pytest.raises(jsonschema.ValidationError, match="summary"):
        validate_custom_resource(prometheus_rule("aip-gpu-rules", broken))


@pytest.mark.parametrize(("text", "problem"), [
    ("rules: []", "exactly one top-level key"),
    ("groups:\n  - rules: []", "needs a `name`"),
    ("groups:\n  - name: g\n    rules: {}", "needs a `name` and a list"),
])
def test_a_malformed_rule_file_is_refused(tmp_path: Path, text: str, problem: str):
    path = tmp_path / "bad.rules.yaml"
    path.write_text(text)
    with pytest.raises(RuleFileError, match=problem):
        load_groups(path)


# -- every series a rule reads exists -----------------------------------------------------------------------


@pytest.mark.parametrize(("where", "expr"), EXPRESSIONS, ids=[where for where, _ in EXPRESSIONS])
def test_rule_reads_only_known_series(where: str, expr: str):
    assert unknown_series(expr) == []


@pytest.mark.parametrize(("expr", "problem"), [
    ("rate(Requests5xx[5m])", "Requests5xx: neither documented"),
    ("sum by (model) (rate(ts_inference_requests_total[5m]))", "labels ['model'] are not among those its exporter"),
    ("team:aip_inference_requests:rate5m{model_name='digits'}", "labels ['model_name'] are not among those its "
                                                                 "recording rule keeps"),
    ("DCGM_FI_DEV_GPU_UTIL{gpu_node='x'}", "labels ['gpu_node']"),
])
def test_the_series_check_catches_a_wrong_name_or_label(expr: str, problem: str):
    problems = unknown_series(expr)
    assert len(problems) == 1 and problem in problems[0], problems


def test_the_autoscaler_exports_the_node_group_metrics_the_rules_read():
    """cluster-autoscaler exports its per-node-group gauges only with --emit-per-nodegroup-metrics."""
    from infra.components.cluster_autoscaler import autoscaler_values, service_monitor_spec
    from infra.versions import DEFAULT_EKS_VERSION

    read = {name for _, expr in EXPRESSIONS for name in metric_names(expr)}
    assert {"cluster_autoscaler_node_group_max_count", "cluster_autoscaler_node_group_target_count"} <= read
    values = autoscaler_values("aip-dev", DEFAULT_EKS_VERSION, "us-east-1")
    assert values["extraArgs"]["emit-per-nodegroup-metrics"] == "true"
    monitor = {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
               "metadata": {"name": "cluster-autoscaler", "namespace": "kube-system"}, "spec": service_monitor_spec()}
    validate_custom_resource(monitor)
    assert monitor["spec"]["endpoints"][0]["port"] == values["service"]["portName"]
