"""The dashboards are valid Grafana models whose every query parses and reads only metrics that exist.

"Exist" means: a metric an exporter is documented to export (`metric_sources.known_metrics()`, with the
labels it carries plus the scrape's target labels), or one a recording rule produces (with the labels that
rule's expression leaves on its result).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models.dashboard import Dashboard

from infra.observability import dashboards as dash
from infra.observability.known_series import series_labels, unknown_series
from infra.observability.promql import parse, series_used
from infra.observability.rules import recorded_metrics
from infra.versions import DEFAULT_EKS_VERSION
from tests.prerequisites import PROMETHEUS_HINT, tool

DASHBOARDS = dash.dashboards()
EXPRESSIONS = dash.panel_expressions()
# What Grafana sends for each variable when several values are picked: a regex alternation of escaped values.
SAMPLE_VALUES = {"datasource": "prometheus", "team": "(team-a|team-b)", "model": "(sentiment|digits)",
                 "pool": "(gpu-a10g|gpu-l4)", "node": r"(ip-10-0-1-17\\.ec2\\.internal)", "cluster": "(aip-logs)"}
CONFIG_MAP_LIMIT = 1024 * 1024  # bytes: etcd's limit on one object, the documented size limit of a ConfigMap
# A client-side `kubectl apply` copies the whole object into an annotation, and annotations total 256 KiB at most.
LAST_APPLIED_LIMIT = 256 * 1024


def concrete(where: str, expr: str) -> str:
    """``expr`` as Prometheus receives it from the dashboard ``where`` names, with only that dashboard's variables."""
    uid = where.split("/", 1)[0]
    defined = {variable["name"] for variable in DASHBOARDS[uid]["templating"]["list"]}
    return dash.substitute(expr, {name: value for name, value in SAMPLE_VALUES.items() if name in defined})


def panels(model: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, those folded in collapsed rows included."""
    return [p for top in model["panels"] for p in (top, *top.get("panels", []))]


# --- the model ---------------------------------------------------------------------------------------------------

def test_three_dashboards_with_stable_uids_and_titles():
    assert set(DASHBOARDS) == {dash.INFERENCE_UID, dash.GPU_FLEET_UID, dash.LOGGING_UID}
    assert len({m["title"] for m in DASHBOARDS.values()}) == 3
    assert dash.dashboards() == DASHBOARDS, "two builds differ: ids or order are not stable"
    for uid, model in DASHBOARDS.items():
        assert model["uid"] == uid
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", uid), "Grafana uids are at most 40 URL-safe characters"
        assert "ai-platform" in model["tags"]
        assert model["refresh"] == dash.REFRESH
        assert isinstance(model["schemaVersion"], int) and model["schemaVersion"] >= 36
        assert model["editable"] is False, "provisioned from code: edits in the UI would be lost"
        assert isinstance(model["annotations"]["list"], list)


def test_model_survives_a_json_round_trip_through_the_sdk_types():
    """JSON and back, then through the SDK's typed model (panels and queries decoded by their plugins)."""
    register_default_plugins()
    for model in DASHBOARDS.values():
        assert json.loads(json.dumps(model)) == model
        assert json.loads(JSONEncoder().encode(Dashboard.from_json(model))) == model


def test_every_panel_has_a_title_the_variable_datasource_and_a_query():
    for uid, model in DASHBOARDS.items():
        for panel in panels(model):
            if panel["type"] == "row":
                continue
            where = f"{uid}/{panel.get('title')}"
            assert panel.get("title"), where
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, where
            assert panel["targets"], where
            assert all(t.get("expr", "").strip() for t in panel["targets"]), where
            ref_ids = [t["refId"] for t in panel["targets"]]
            assert all(ref_ids) and len(set(ref_ids)) == len(ref_ids), where
            assert panel["fieldConfig"]["defaults"].get("unit"), f"{where}: no unit"


def test_panel_ids_are_unique_and_panels_do_not_overlap():
    for uid, model in DASHBOARDS.items():
        ids = [p["id"] for p in panels(model)]
        assert len(set(ids)) == len(ids) and all(isinstance(i, int) and i > 0 for i in ids), uid
        boxes = []
        for panel in model["panels"]:
            grid = panel["gridPos"]
            assert grid["w"] > 0 and grid["h"] > 0 and grid["x"] >= 0 and grid["y"] >= 0, (uid, panel["title"])
            assert grid["x"] + grid["w"] <= 24, f"{uid}/{panel['title']}: wider than the 24-column grid"
            for other_title, other in boxes:
                apart = (grid["x"] + grid["w"] <= other["x"] or other["x"] + other["w"] <= grid["x"]
                         or grid["y"] + grid["h"] <= other["y"] or other["y"] + other["h"] <= grid["y"])
                assert apart, f"{uid}: {panel['title']!r} overlaps {other_title!r}"
            boxes.append((panel["title"], grid))


def test_dashboards_have_the_variables_the_issue_asks_for():
    names = {uid: [v["name"] for v in m["templating"]["list"]] for uid, m in DASHBOARDS.items()}
    assert names[dash.INFERENCE_UID] == ["datasource", "team", "model"]
    assert names[dash.GPU_FLEET_UID] == ["datasource", "pool", "node"]
    assert names[dash.LOGGING_UID][0] == "datasource"
    for model in DASHBOARDS.values():
        source = model["templating"]["list"][0]
        assert (source["type"], source["query"]) == ("datasource", "prometheus")


def test_queries_use_only_their_dashboards_variables_and_multi_values_only_in_regex_matchers():
    for uid, model in DASHBOARDS.items():
        defined = {v["name"] for v in model["templating"]["list"]}
        multi = {v["name"] for v in model["templating"]["list"] if v.get("multi")}
        queries = [e for w, e in EXPRESSIONS if w.startswith(f"{uid}/")]
        queries += [v["query"] for v in model["templating"]["list"] if v["type"] == "query"]
        for expr in queries:
            assert dash.variables_in(expr) <= defined | set(dash.GRAFANA_BUILTINS), expr
            for label, op, value in re.findall(r'(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"', expr):
                if dash.variables_in(value) & multi:
                    assert op in ("=~", "!~"), f"{uid}: {label}{op}{value!r}: a multi-value variable needs =~"


def test_substitute_replaces_every_form_and_refuses_unknown_variables():
    values = {"team": "a"}
    assert dash.substitute('x{t="$team",u="${team}",v="${team:regex}",w="[[team]]"}[$__rate_interval]', values) == (
        f'x{{t="a",u="a",v="a",w="a"}}[{dash.GRAFANA_BUILTINS["__rate_interval"]}]')
    with pytest.raises(KeyError):
        dash.substitute('x{m="$model"}', values)
    replaced = 'label_replace(x, "isvc", "$1", "deployment", "(.+)-predictor")'
    assert dash.substitute(replaced, values) == replaced


# --- the queries -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("where", "expr"), EXPRESSIONS, ids=[f"{w}:{i}" for i, (w, _) in enumerate(EXPRESSIONS)])
def test_panel_expression_parses_as_promql(where: str, expr: str):
    parse(concrete(where, expr))


def promtool() -> str:
    return tool("promtool", PROMETHEUS_HINT)


def test_promtool_accepts_every_panel_expression(tmp_path: Path):
    """Prometheus' own parser, through `promtool check rules` on one recording rule per query."""
    rules = [{"record": f"aip_dashboard:query_{i}", "expr": concrete(where, expr)}
             for i, (where, expr) in enumerate(EXPRESSIONS)]
    rules += [{"record": f"aip_dashboard:variable_{i}", "expr": concrete(where, selector)}
              for i, (where, selector, _) in enumerate(dash.variable_queries())]
    path = tmp_path / "dashboards.rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    check = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"{len(rules)} rules found" in check.stdout


@pytest.mark.parametrize(("where", "expr"), EXPRESSIONS, ids=[f"{w}:{i}" for i, (w, _) in enumerate(EXPRESSIONS)])
def test_panel_reads_only_exported_or_recorded_series(where: str, expr: str):
    assert unknown_series(concrete(where, expr)) == []


def test_variables_list_labels_of_known_series():
    for where, selector, label in dash.variable_queries():
        assert unknown_series(concrete(where, selector)) == [], where
        (use,) = series_used(concrete(where, selector))
        carried = series_labels(use.metric)
        assert carried is not None and label in carried, f"{where}: {use.metric} carries no {label!r}"


def test_panels_prefer_recorded_metrics():
    """Where a rule records a number, panels read the recording (one definition for the alert and the panel)."""
    read = {use.metric for where, expr in EXPRESSIONS for use in series_used(concrete(where, expr))}
    assert read & recorded_metrics() >= {"team:aip_inference_requests:rate5m", "team:aip_inference_error_ratio:rate5m",
                                         "gpu:aip_gpu_utilization:avg5m", "cluster:aip_log_documents_indexed:rate5m"}
    for raw in ("DCGM_FI_DEV_GPU_UTIL", "Requests5XX", "aip_inference_requests_total",
                "ts_inference_latency_microseconds"):
        assert raw not in read, f"{raw} is read raw though a rule records it"


@pytest.mark.parametrize(("expr", "problem"), [
    ('team:aip_inference_requests:rate5m{model_name="x"}', "labels ['model_name']"),
    ("rate(ts_inference_requests_total_typo[5m])", "neither documented"),
    ('sum by (pool) (DCGM_FI_DEV_GPU_UTIL)', "labels ['pool']"),
])
def test_the_series_check_catches_unknown_metrics_and_labels(expr: str, problem: str):
    assert any(problem in found for found in unknown_series(expr))


# --- the ConfigMaps ----------------------------------------------------------------------------------------------

def config_map(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "monitoring", "labels": spec["labels"]}, "data": spec["data"]}


def test_config_maps_carry_the_sidecar_label_and_each_dashboard_once():
    maps = dash.dashboard_config_maps()
    shipped = {}
    for name, spec in maps.items():
        assert set(spec) == {"labels", "data"}
        assert spec["labels"] == {"grafana_dashboard": "1"}
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name) and len(name) <= 63, name
        for key, text in spec["data"].items():
            assert re.fullmatch(r"[-._a-zA-Z0-9]+", key) and key.endswith(".json"), key
            shipped[key.removesuffix(".json")] = json.loads(text)
    assert shipped == DASHBOARDS


def test_config_maps_are_valid_kubernetes_objects_within_size_limits():
    for name, spec in dash.dashboard_config_maps().items():
        manifest = config_map(name, spec)
        kubernetes_validate.validate(manifest, DEFAULT_EKS_VERSION, strict=True)
        size = len(json.dumps(manifest).encode())
        assert size < CONFIG_MAP_LIMIT, f"{name}: {size} bytes"
        assert size < LAST_APPLIED_LIMIT, f"{name}: {size} bytes is too big for a client-side kubectl apply"
