"""The platform's Grafana dashboards, built in code and shipped as ConfigMaps for Grafana's dashboard sidecar.

Three dashboards: inference (per team and model), the GPU fleet (per pool and node) and logging health.
Panels read the recorded metrics of `rules/*.rules.yaml` where a rule records what they show, so a panel and
the alert on the same number cannot disagree; they read exporter metrics directly only where no rule does.
Every metric a panel reads must be one `metric_sources.py` documents or a rule records, and every
expression must parse once Grafana has replaced its variables: the tests check both.

Nothing here talks to Pulumi: the monitoring component creates one ConfigMap per entry of
`dashboard_config_maps()`, and kube-prometheus-stack's Grafana sidecar loads every ConfigMap that carries
`DASHBOARD_LABEL: DASHBOARD_LABEL_VALUE`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from grafana_foundation_sdk.builders import dashboard as gd
from grafana_foundation_sdk.builders import prometheus, stat, timeseries
from grafana_foundation_sdk.builders.common import GraphThresholdsStyleConfig as ThresholdsStyle
from grafana_foundation_sdk.builders.common import ReduceDataOptions, VizLegendOptions, VizTooltipOptions
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as dm

# kube-prometheus-stack's values for its Grafana sidecar (`grafana.sidecar.dashboards.label` / `labelValue`):
# https://github.com/prometheus-community/helm-charts/blob/main/charts/kube-prometheus-stack/values.yaml
# (the grafana chart's own default labelValue is "", any value; kube-prometheus-stack sets "1").
DASHBOARD_LABEL = "grafana_dashboard"
DASHBOARD_LABEL_VALUE = "1"
CONFIG_MAP_PREFIX = "aip-dashboard-"

INFERENCE_UID = "aip-inference"
GPU_FLEET_UID = "aip-gpu-fleet"
LOGGING_UID = "aip-logging-health"
TAGS = ("ai-platform",)
REFRESH = "1m"

# Every panel queries the data source the `datasource` variable picks (kube-prometheus-stack's by default).
DATASOURCE = dm.DataSourceRef(type_val="prometheus", uid="${datasource}")
# Predictor Deployments of KServe's Standard mode are named `<InferenceService>-predictor`; an
# InferenceService is named after the model it serves (infra/components/inference_service.py).
PREDICTOR = "-predictor"
# Filebeat's data streams (`filebeat-<version>`, `logs-<dataset>-<namespace>`) and their backing indices, as in
# rules/logging.rules.yaml: Kibana's and Elasticsearch's own indices are not logs.
LOG_INDICES = r'index=~"(\\.ds-)?(filebeat|logs)-.*"'

# Grafana's own variables, and what a query gets for them (`$__rate_interval` is at least 4 scrape intervals).
GRAFANA_BUILTINS: dict[str, str] = {"__rate_interval": "2m", "__interval": "30s", "__range": "1h",
                                    "__interval_ms": "30000", "__range_s": "3600"}
# Names start with a letter or `_`: `$1` in a label_replace replacement is PromQL's, not Grafana's.
_VARIABLE = re.compile(r"\$\{([A-Za-z_]\w*)(?::\w+)?\}|\$([A-Za-z_]\w*)|\[\[([A-Za-z_]\w*)\]\]")


@dataclass(frozen=True)
class Query:
    """One PromQL query of a panel and the legend of its series (Grafana's `{{label}}` syntax)."""

    expr: str
    legend: str


def substitute(expr: str, values: Mapping[str, str]) -> str:
    """``expr`` with every Grafana variable (`$x`, `${x}`, `${x:fmt}`, `[[x]]`) replaced by ``values[x]``.

    A variable without a value raises KeyError: a query may use only its dashboard's variables.
    """
    def value(match: re.Match[str]) -> str:
        name = next(group for group in match.groups() if group)
        return {**GRAFANA_BUILTINS, **values}[name]

    return _VARIABLE.sub(value, expr)


def variables_in(expr: str) -> set[str]:
    """Names of the Grafana variables ``expr`` uses (built-ins included)."""
    return {next(group for group in match.groups() if group) for match in _VARIABLE.finditer(expr)}


# --- building blocks ---------------------------------------------------------------------------------------------

def _targets(queries: list[Query]) -> list[prometheus.Dataquery]:
    return [prometheus.Dataquery().expr(q.expr).legend_format(q.legend).ref_id(chr(ord("A") + i)).range()
            for i, q in enumerate(queries)]


def _thresholds(*steps: tuple[float, str]) -> gd.ThresholdsConfig:
    return gd.ThresholdsConfig().mode(dm.ThresholdsMode.ABSOLUTE).steps(
        [dm.Threshold(value=None, color="green"), *(dm.Threshold(value=v, color=c) for v, c in steps)])


def _timeseries(title: str, description: str, unit: str, queries: list[Query], *, width: int = 12,
                thresholds: tuple[tuple[float, str], ...] = ()) -> timeseries.Panel:
    panel = (timeseries.Panel().title(title).description(description).datasource(DATASOURCE).unit(unit)
             .targets(_targets(queries)).height(8).span(width).fill_opacity(10).span_nulls(False)
             .legend(VizLegendOptions().show_legend(True).display_mode(common.LegendDisplayMode.TABLE)
                     .placement(common.LegendPlacement.BOTTOM).calcs(["mean", "max", "lastNotNull"]))
             .tooltip(VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI).sort(common.SortOrder.DESCENDING)))
    if thresholds:
        # Lines at the alert thresholds: what the alerts of rules/*.rules.yaml fire on.
        panel = panel.thresholds(_thresholds(*thresholds)).thresholds_style(
            ThresholdsStyle().mode(common.GraphTresholdsStyleMode.DASHED))
    return panel


def _stat(title: str, description: str, unit: str, query: Query, *, width: int = 6,
          thresholds: tuple[tuple[float, str], ...] = (), mappings: list[dm.ValueMapping] | None = None,
          no_value: str = "no data") -> stat.Panel:
    panel = (stat.Panel().title(title).description(description).datasource(DATASOURCE).unit(unit)
             .targets(_targets([query])).height(4).span(width).no_value(no_value)
             .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]).values(False))
             .color_mode(common.BigValueColorMode.VALUE).graph_mode(common.BigValueGraphMode.AREA)
             .thresholds(_thresholds(*thresholds)))
    return panel.mappings(mappings) if mappings else panel


def _datasource_variable() -> gd.DatasourceVariable:
    return (gd.DatasourceVariable("datasource").label("Data source").type("prometheus")
            .current(dm.VariableOption(selected=True, text="default", value="default")))


def _query_variable(name: str, label: str, query: str, *, regex: str | None = None) -> gd.QueryVariable:
    """A multi-value variable listing a label's values (`label_values(selector, label)`), "All" by default.

    Multi-value: Grafana then writes a selection as a regex alternation, so the variable may only be used in
    `=~` matchers (a test checks).
    """
    variable = (gd.QueryVariable(name).label(label).datasource(DATASOURCE).query(query)
                .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED).sort(dm.VariableSort.ALPHABETICAL_ASC)
                .multi(True).include_all(True)
                .current(dm.VariableOption(selected=True, text=["All"], value=["$__all"])))
    return variable.regex(regex) if regex else variable


def _dashboard(uid: str, title: str, description: str, tags: tuple[str, ...]) -> gd.Dashboard:
    return (gd.Dashboard(title).uid(uid).description(description).tags([*TAGS, *tags]).refresh(REFRESH)
            .time("now-3h", "now").timezone(common.TimeZoneBrowser).readonly()
            .tooltip(dm.DashboardCursorSync.CROSSHAIR)
            # The built-in "Annotations & Alerts" query is added by Grafana itself to an empty list.
            .annotations([])
            .link(gd.DashboardLink("AI platform").type(dm.DashboardLinkType.DASHBOARDS).tags(list(TAGS))
                  .as_dropdown(True).keep_time(True).include_vars(False).target_blank(False))
            .with_variable(_datasource_variable()))


# --- the dashboards ------------------------------------------------------------------------------------------

def inference_dashboard() -> gd.Dashboard:
    """Requests, 5xx ratio, latency, queue time and replicas of every model, per team (namespace) and model.

    Every number comes from the recorded `team:aip_*` series. Requests, answers by status class and the 5xx
    ratio are recorded for both runtimes at once (TorchServe's `Requests2XX`..., the KServe runtime's
    `aip_inference_requests_total`), so those panels need one query each; latency differs by runtime (a
    TorchServe mean, KServe percentiles) and keeps one query per runtime.
    """
    sel = 'namespace=~"$team", inferenceservice=~"$model"'
    predictors = f'namespace=~"$team", deployment=~"$model{PREDICTOR}"'
    legend = "{{namespace}}/{{inferenceservice}}"
    error_steps = ((0.05, "orange"), (0.25, "red"))  # InferenceErrorRatioHigh: warning, critical

    return (
        _dashboard(INFERENCE_UID, "AI platform / Inference",
                   "Traffic, errors, latency and capacity of every served model. Team = the team's namespace; "
                   "model = its InferenceService.", ("inference",))
        .with_variable(_query_variable(
            "team", "Team", f'label_values(kube_deployment_spec_replicas{{deployment=~".+{PREDICTOR}"}}, namespace)'))
        .with_variable(_query_variable(
            "model", "Model",
            f'label_values(kube_deployment_spec_replicas{{namespace=~"$team", deployment=~".+{PREDICTOR}"}}, '
            "deployment)", regex=f"/^(.+){PREDICTOR}$/"))
        .with_row(gd.Row("Overview"))
        .with_panel(_stat(
            "Requests/s", "Inference requests per second of the selected models, every runtime, every status.",
            "reqps", Query(f"sum(team:aip_inference_requests:rate5m{{{sel}}})", "requests/s"), no_value="0"))
        .with_panel(_stat(
            "Worst 5xx ratio", "The highest share of 5xx answers among the selected models (5-minute rate).",
            "percentunit", Query(f"max(team:aip_inference_error_ratio:rate5m{{{sel}}})", "worst 5xx ratio"),
            thresholds=error_steps))
        .with_panel(_stat(
            "Slowest mean latency", "The highest mean inference latency among the selected models (5 minutes).",
            "s", Query(f"max(team:aip_torchserve_inference_latency_seconds:mean5m{{{sel}}} "
                       f"or team:aip_kserve_predict_latency_seconds:mean5m{{{sel}}})", "slowest mean"),
            thresholds=((1, "red"),)))
        .with_panel(_stat(
            "Available replicas", "Predictor pods available to serve, over all selected models (kube-state-metrics).",
            "short", Query(f"sum(kube_deployment_status_replicas_available{{{predictors}}})", "available"),
            thresholds=()))
        .with_row(gd.Row("Traffic and errors"))
        .with_panel(_timeseries(
            "Requests/s by model", "Inference requests per second, every status (5-minute rate).",
            "reqps", [Query(f"team:aip_inference_requests:rate5m{{{sel}}}", legend)]))
        .with_panel(_timeseries(
            "5xx ratio by model",
            "Share of requests answered with a 5xx. Dashed lines: the warning and critical alert thresholds.",
            "percentunit", [Query(f"team:aip_inference_error_ratio:rate5m{{{sel}}}", legend)],
            thresholds=error_steps))
        .with_panel(_timeseries(
            "Responses by status",
            "Answers per second by HTTP status class, every runtime (5-minute rate). TorchServe reports classes "
            "only; a KServe model's exact codes are aip_inference_requests_total's `code` label (Explore).", "reqps",
            [Query(f"team:aip_inference_responses:rate5m{{{sel}}}", legend + " {{code_class}}")], width=24))
        .with_row(gd.Row("Latency"))
        .with_panel(_timeseries(
            "Inference latency",
            "TorchServe: mean time in the handler per request (it exports no histogram). KServe: mean and "
            "p50/p95/p99 of predict. Dashed line: the latency alert threshold.", "s",
            [Query(f"team:aip_torchserve_inference_latency_seconds:mean5m{{{sel}}}", legend + " mean"),
             Query(f"team:aip_kserve_predict_latency_seconds:mean5m{{{sel}}}", legend + " mean"),
             Query(f"team:aip_kserve_predict_latency_seconds:p50_5m{{{sel}}}", legend + " p50"),
             Query(f"team:aip_kserve_predict_latency_seconds:p95_5m{{{sel}}}", legend + " p95"),
             Query(f"team:aip_kserve_predict_latency_seconds:p99_5m{{{sel}}}", legend + " p99")],
            thresholds=((1, "red"),)))
        .with_panel(_timeseries(
            "Queue time",
            "Mean time a request waited in TorchServe's queue for a free worker: saturation shows here first. "
            "KServe ModelServer has no such queue.", "s",
            [Query(f"team:aip_torchserve_queue_latency_seconds:mean5m{{{sel}}}", legend)],
            thresholds=((0.5, "red"),)))
        .with_row(gd.Row("Capacity"))
        .with_panel(_timeseries(
            "Replicas", "Predictor replicas the autoscaler wants, and those available to serve.", "short",
            [Query(f"max by (namespace, deployment) (kube_deployment_spec_replicas{{{predictors}}})",
                   "{{namespace}}/{{deployment}} desired"),
             Query(f"max by (namespace, deployment) (kube_deployment_status_replicas_available{{{predictors}}})",
                   "{{namespace}}/{{deployment}} available")], width=24))
    )


def gpu_fleet_dashboard() -> gd.Dashboard:
    """Utilization, framebuffer memory, power and temperature of every GPU, per pool and node (DCGM exporter).

    DCGM repeats a GPU's series for every pod sharing it: raw series are taken `max by` one GPU first, as the
    recording rules do, so that a shared GPU is not counted twice.
    """
    sel = 'gpu_pool=~"$pool", node=~"$node"'
    gpu = "max by (gpu_pool, node, gpu, UUID)"
    per_node = "{{gpu_pool}}/{{node}}"
    return (
        _dashboard(GPU_FLEET_UID, "AI platform / GPU fleet",
                   "Every GPU of every GPU node pool, from NVIDIA's DCGM exporter.", ("gpu",))
        .with_variable(_query_variable("pool", "GPU pool", "label_values(gpu:aip_gpu_utilization:avg5m, gpu_pool)"))
        .with_variable(_query_variable(
            "node", "Node", 'label_values(gpu:aip_gpu_utilization:avg5m{gpu_pool=~"$pool"}, node)'))
        .with_row(gd.Row("Fleet"))
        .with_panel(_stat("GPUs", "GPUs reporting to DCGM.", "short",
                          Query(f"count(gpu:aip_gpu_utilization:avg5m{{{sel}}})", "GPUs"), width=4, no_value="0"))
        .with_panel(_stat("Mean utilization", "Mean GPU utilization over the last 5 minutes.", "percent",
                          Query(f"avg(gpu:aip_gpu_utilization:avg5m{{{sel}}})", "utilization"), width=4,
                          thresholds=((90, "orange"),)))
        .with_panel(_stat("Framebuffer used", "Mean share of GPU memory in use.", "percentunit",
                          Query(f"avg(gpu:aip_gpu_memory_used:ratio{{{sel}}})", "memory used"), width=4,
                          thresholds=((0.95, "red"),)))
        .with_panel(_stat("Power draw", "Power drawn by the selected GPUs now.", "watt",
                          Query(f"sum({gpu} (DCGM_FI_DEV_POWER_USAGE{{{sel}}}))", "power"), width=4))
        .with_panel(_stat("Hottest GPU", "Temperature of the hottest selected GPU.", "celsius",
                          Query(f"max(DCGM_FI_DEV_GPU_TEMP{{{sel}}})", "temperature"), width=4,
                          thresholds=((80, "orange"), (87, "red"))))
        .with_panel(_stat("GPUs with a critical XID", "GPUs whose last XID error needs a reset or a new node.",
                          "short", Query(f"count(gpu:aip_gpu_critical_xid:last{{{sel}}} > 0) or vector(0)", "XID"),
                          width=4, thresholds=((1, "red"),)))
        .with_row(gd.Row("Utilization"))
        .with_panel(_timeseries("Utilization by pool", "Mean GPU utilization of each pool (5 minutes).", "percent",
                                [Query('gpu_pool:aip_gpu_utilization:avg5m{gpu_pool=~"$pool"}', "{{gpu_pool}}")],
                                thresholds=((90, "orange"),)))
        .with_panel(_timeseries("Utilization by node", "Mean utilization of each node's GPUs (5 minutes).", "percent",
                                [Query(f"avg by (gpu_pool, node) (gpu:aip_gpu_utilization:avg5m{{{sel}}})",
                                       per_node)]))
        .with_row(gd.Row("Memory"))
        .with_panel(_timeseries(
            "Framebuffer used by pool", "Mean share of GPU memory in use in each pool. Dashed: the pressure alert.",
            "percentunit", [Query('gpu_pool:aip_gpu_memory_used:ratio{gpu_pool=~"$pool"}', "{{gpu_pool}}")],
            thresholds=((0.95, "red"),)))
        .with_panel(_timeseries(
            "Framebuffer used by node", "GPU memory in use on each node, all its GPUs together.", "mbytes",
            [Query(f"sum by (gpu_pool, node) ({gpu} (DCGM_FI_DEV_FB_USED{{{sel}}}))", per_node)]))
        .with_row(gd.Row("Power and temperature"))
        .with_panel(_timeseries(
            "Power draw by node", "Power drawn by each node's GPUs together.", "watt",
            [Query(f"sum by (gpu_pool, node) ({gpu} (DCGM_FI_DEV_POWER_USAGE{{{sel}}}))", per_node)]))
        .with_panel(_timeseries(
            "Temperature by GPU", "Core temperature of each GPU.", "celsius",
            [Query(f"max by (gpu_pool, node, gpu) (DCGM_FI_DEV_GPU_TEMP{{{sel}}})", per_node + " GPU {{gpu}}")],
            thresholds=((80, "orange"), (87, "red"))))
    )


def logging_dashboard() -> gd.Dashboard:
    """Health of the log pipeline: Elasticsearch status, shards, log intake, JVM heap and disk (ES exporter)."""
    cluster = 'cluster=~"$cluster"'
    status = (f'max by (cluster) (elasticsearch_cluster_health_status{{{cluster}, color="red"}}) * 2 '
              f'+ max by (cluster) (elasticsearch_cluster_health_status{{{cluster}, color="yellow"}})')
    colors = dm.ValueMap(options={"0": dm.ValueMappingResult(text="green", color="green", index=0),
                                  "1": dm.ValueMappingResult(text="yellow", color="yellow", index=1),
                                  "2": dm.ValueMappingResult(text="red", color="red", index=2)})
    node = "{{cluster}}/{{name}}"
    health = "max by (cluster) (elasticsearch_cluster_health_"
    return (
        _dashboard(LOGGING_UID, "AI platform / Logging health",
                   "Elasticsearch (ECK) as the elasticsearch exporter sees it: status, shards, log intake, heap "
                   "and disk.", ("logging",))
        .with_variable(_query_variable("cluster", "Cluster",
                                       "label_values(elasticsearch_cluster_health_status, cluster)"))
        .with_row(gd.Row("Cluster"))
        .with_panel(_stat("Status", "Cluster health: green, yellow (replicas unassigned) or red (primaries).",
                          "none", Query(status, "{{cluster}}"), mappings=[colors],
                          thresholds=((1, "yellow"), (2, "red")), no_value="no data: is the exporter up?"))
        .with_panel(_stat("Nodes", "Elasticsearch nodes in the cluster.", "short",
                          Query(f"{health}number_of_nodes{{{cluster}}})", "{{cluster}}")))
        .with_panel(_stat("Unassigned shards", "Shards no node holds: replicas (yellow) or primaries (red).", "short",
                          Query(f"{health}unassigned_shards{{{cluster}}})", "{{cluster}}"),
                          thresholds=((1, "orange"),)))
        .with_panel(_stat("Log documents indexed/s", "Documents written to the log data streams (5 minutes).", "short",
                          Query(f"sum(cluster:aip_log_documents_indexed:rate5m{{{cluster}}})", "docs/s"),
                          no_value="0"))
        .with_row(gd.Row("Intake"))
        .with_panel(_timeseries(
            "Log documents indexed/s", "Documents written to the log data streams. Zero while pods log: shipping "
            "has stalled (Filebeat, or Elasticsearch refusing writes).", "short",
            [Query(f"cluster:aip_log_documents_indexed:rate5m{{{cluster}}}", "{{cluster}}")]))
        .with_panel(_timeseries(
            "Log documents stored", "Primary documents in the log indices (replicas not counted).", "short",
            [Query(f"sum by (cluster) (elasticsearch_indices_docs_primary{{{cluster}, {LOG_INDICES}}})",
                   "{{cluster}} documents")]))
        .with_panel(_timeseries(
            "Shards", "Shards by state.", "short",
            [Query(f"{health}{state}_shards{{{cluster}}})", f"{{{{cluster}}}} {state}")
             for state in ("active", "unassigned", "relocating", "initializing")]))
        .with_panel(_timeseries(
            "Log index store size", "Bytes on disk of the log indices, replicas included.", "bytes",
            [Query(f"sum by (cluster) (elasticsearch_indices_store_size_bytes_total{{{cluster}, {LOG_INDICES}}})",
                   "{{cluster}}")]))
        .with_row(gd.Row("Resources"))
        .with_panel(_timeseries(
            "JVM heap used", "Heap in use over the maximum heap, per node. Sustained above 85%: more memory.",
            "percentunit",
            [Query(f'sum by (cluster, name) (elasticsearch_jvm_memory_used_bytes{{{cluster}, area="heap"}}) '
                   f'/ sum by (cluster, name) (elasticsearch_jvm_memory_max_bytes{{{cluster}, area="heap"}})', node)],
            thresholds=((0.85, "orange"),)))
        .with_panel(_timeseries(
            "Data disk used", "Share of the data volume in use, per node. Elasticsearch's disk watermarks: 85% "
            "(no new shards), 90% (shards move away), 95% (indices turn read-only).", "percentunit",
            [Query(f"1 - sum by (cluster, name) (elasticsearch_filesystem_data_available_bytes{{{cluster}}}) "
                   f"/ sum by (cluster, name) (elasticsearch_filesystem_data_size_bytes{{{cluster}}})", node)],
            thresholds=((0.85, "orange"), (0.9, "red"))))
    )


# --- what other modules use ----------------------------------------------------------------------------------

def _model(builder: gd.Dashboard) -> dict[str, Any]:
    """The dashboard's JSON model, with panel ids (unique in the dashboard, stable across builds)."""
    model = builder.build()
    for number, panel in enumerate(model.panels or [], start=1):
        panel.id_val = number
    return json.loads(JSONEncoder().encode(model))


def dashboards() -> dict[str, dict[str, Any]]:
    """uid -> the dashboard's JSON model, as Grafana imports it."""
    built = [_model(builder()) for builder in (inference_dashboard, gpu_fleet_dashboard, logging_dashboard)]
    return {model["uid"]: model for model in built}


def panel_expressions() -> list[tuple[str, str]]:
    """("<uid>/<panel title>", expr) of every query of every panel, variables left as Grafana has them."""
    return [(f"{uid}/{panel['title']}", target["expr"])
            for uid, model in dashboards().items() for panel in model["panels"]
            for target in panel.get("targets", [])]


def variable_queries() -> list[tuple[str, str, str]]:
    """("<uid>/$<name>", series selector, label) of every `label_values(selector, label)` variable."""
    found = []
    for uid, model in dashboards().items():
        for variable in model["templating"]["list"]:
            if variable["type"] == "query":
                match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", variable["query"])
                if match is None:
                    raise ValueError(f"{uid}/${variable['name']}: not label_values(selector, label)")
                found.append((f"{uid}/${variable['name']}", match.group(1), match.group(2)))
    return found


def dashboard_config_maps() -> dict[str, dict[str, Any]]:
    """ConfigMap name -> {"labels": the sidecar's label, "data": {"<uid>.json": the dashboard's JSON}}."""
    return {f"{CONFIG_MAP_PREFIX}{uid.removeprefix('aip-')}": {
                "labels": {DASHBOARD_LABEL: DASHBOARD_LABEL_VALUE},
                "data": {f"{uid}.json": json.dumps(model, indent=1, sort_keys=True)}}
            for uid, model in dashboards().items()}
