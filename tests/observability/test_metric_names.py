"""Every metric the alert rules and dashboards read from TorchServe or KServe is exported by the real server.

One real TorchServe 0.12 and one real KServe ModelServer (the ones `aip serve` runs) serve the packaged
models on loopback. Traffic makes every counter exist: successes, the models' invalid examples (4xx)
and a real 5xx from each server: TorchServe answers 503 for a model scaled to no workers (through its
management API, which stays open for scaling while model registration is off), KServe answers 501 for
a versioned v2 route. Without that 5xx, TorchServe would not export `Requests5XX` at all: its
counters appear on their first increment. Then `/metrics` of each is parsed with prometheus_client's
own parser, and the servers stop before the checks run.

Checked: each name and label of the live-checked lists in infra/observability/metric_sources.py (so
that list cannot drift from reality), and each series the rule and panel expressions read from a
live-checked source, with the labels the expression needs (less the scrape's target labels).
Names are sample names (`request_predict_seconds_bucket`, `ts_inference_requests_total`), which is
what PromQL reads.
"""

from __future__ import annotations

import difflib
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from infra.observability import metric_sources
from infra.observability.metric_sources import TARGET_LABELS, MetricSource
from infra.observability.promql import series_used
from infra.serving.catalog import MODEL_HANDLERS, Catalog
from infra.serving.kserve_process import KServeServer
from infra.serving.local_server import LocalServer, ServedModel
from infra.serving.package import package_models
from infra.serving.torchserve_process import TorchServeServer
from tests.prerequisites import JAVA_HINT, needs_tools

pytestmark = [
    pytest.mark.integration,
    needs_tools("java", hint=JAVA_HINT),
]

JSON = {"Content-Type": "application/json"}
RUNTIMES = ("torchserve", "kserve")


# -- what a server exported ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Exported:
    """What one scrape of a real server's `/metrics` held.

    Attributes:
        server: The runtime (`torchserve`, `kserve`).
        series: Sample name → the label-name sets its series carry (`le` on `_bucket` samples...).
        values: (sample name, sorted label items) → value, to check that traffic was counted.
        declared: Family names declared by `# TYPE` without any series (TorchServe declares GPU gauges
            on a machine without GPUs): named in failure messages, never counted as exported.
    """

    server: str
    series: Mapping[str, frozenset[frozenset[str]]]
    values: Mapping[tuple[str, tuple[tuple[str, str], ...]], float]
    declared: frozenset[str]

    def value(self, name: str, **labels: str) -> float | None:
        """Sum over the series of `name` whose labels include `labels`; None when there is none."""
        found = [v for (sample, items), v in self.values.items()
                 if sample == name and set(labels.items()) <= set(items)]
        return sum(found) if found else None

    def problem(self, metric: str, labels: Iterable[str]) -> str | None:
        """Why `metric` with `labels` cannot be read from this server, naming what it exported instead."""
        needed = frozenset(labels) - TARGET_LABELS
        label_sets = self.series.get(metric)
        if label_sets is None:
            similar = difflib.get_close_matches(metric, list(self.series), n=5, cutoff=0.6)
            same_family = sorted(name for name in self.series if name.startswith(metric) or metric.startswith(name))
            instead = sorted(set(similar) | set(same_family)) or sorted(self.series)
            declared = " (declared by # TYPE, but no series)" if _family(metric) in self.declared else ""
            return f"{self.server} exports no series named {metric}{declared}; it exported {', '.join(instead)}"
        if any(needed <= label_set for label_set in label_sets):
            return None
        exported = "; ".join("{" + ", ".join(sorted(s)) + "}" for s in sorted(label_sets, key=sorted))
        absent = needed - set().union(*label_sets)
        return (f"{self.server} exports {metric} without label(s) {', '.join(sorted(absent))}"
                f" (needed: {', '.join(sorted(needed))}); its series carry {exported}")


def parse_exposition(server: str, text: str) -> Exported:
    """Parse Prometheus text exposition with prometheus_client's parser, keeping the names as exposed.

    The parser hands counters over in OpenMetrics form: a counter exposed as `Requests5XX` (TorchServe
    names several counters without `_total`) comes back as sample `Requests5XX_total`. Prometheus stores
    the name as exposed, and that is the name PromQL must use, so each counter's samples are renamed back
    to the name its `# TYPE` line declares.
    """
    declared_counters = set(re.findall(r"^#\s*TYPE\s+(\S+)\s+counter\s*$", text, flags=re.MULTILINE))
    series: dict[str, set[frozenset[str]]] = defaultdict(set)
    values: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    declared: set[str] = set()
    for family in text_string_to_metric_families(text):
        if not family.samples:
            declared.add(family.name)
        for sample in family.samples:
            name = sample.name
            if family.type == "counter" and family.name in declared_counters and name == f"{family.name}_total":
                name = family.name
            series[name].add(frozenset(sample.labels))
            values[(name, tuple(sorted(sample.labels.items())))] = sample.value
    return Exported(server, {name: frozenset(sets) for name, sets in series.items()}, values, frozenset(declared))


def _family(sample_name: str) -> str:
    """The family a sample name belongs to, as prometheus_client's parser names families."""
    return re.sub(r"_(total|bucket|count|sum|created|gcount|gsum|info)$", "", sample_name)


# -- the real servers and their traffic ----------------------------------------------------------------


@dataclass(frozen=True)
class Traffic:
    """Statuses each server answered, by model, to check that the counters had something to count."""

    statuses: Mapping[str, Mapping[str, list[int]]]


def _served(catalog: Catalog) -> list[ServedModel]:
    manifest = package_models(catalog=catalog)  # build/models, cached across runs like `aip serve`
    return [ServedModel(folder, catalog.runtime_dir, manifest.models[folder.name]) for folder in catalog.select()]


def _send_examples(server: LocalServer, catalog: Catalog, http: httpx.Client) -> dict[str, list[int]]:
    """Every example of every model (valid ones and the invalid-*.json ones) on the server's v1 route."""
    statuses: dict[str, list[int]] = defaultdict(list)
    headers = {**JSON, **server.request_headers()}
    for folder in catalog.select():
        for case in folder.examples:
            answer = http.post(server.v1_url(folder.name), content=case.body(), headers=headers)
            assert answer.status_code == case.expect.status, (server.runtime, case.path, answer.text)
            statuses[folder.name].append(answer.status_code)
    return statuses


def _torchserve_5xx(server: TorchServeServer, http: httpx.Client, model: str) -> int:
    """A real 503: the model scaled to no workers answers "no worker to serve inference request"."""
    scaled = http.put(f"{server.listeners.management_url}/models/{model}", headers=server.management_headers(),
                      params={"min_worker": 0, "max_worker": 0, "synchronous": "true"})
    assert scaled.status_code == 200, scaled.text
    answer = http.post(server.v1_url(model), json={"instances": [[0] * 64]},
                       headers={**JSON, **server.request_headers()})
    assert answer.status_code == 503 and answer.json()["type"] == "ServiceUnavailableException", answer.text
    return answer.status_code


def _kserve_5xx(server: KServeServer, http: httpx.Client, model: str) -> int:
    """A real 501: the predictors have no explainer, and KServe answers the explain verb with "not implemented"."""
    answer = http.post(f"{server.base_url}/v1/models/{model}:explain", json={"instances": [[0] * 64]}, headers=JSON)
    assert answer.status_code == 501, answer.text
    return answer.status_code


@dataclass(frozen=True)
class Scrapes:
    exported: Mapping[str, Exported]
    traffic: Traffic


@pytest.fixture(scope="module")
def scrapes(tmp_path_factory: pytest.TempPathFactory) -> Scrapes:
    """Both servers started together (startup overlaps), traffic sent, `/metrics` scraped, both stopped."""
    catalog = Catalog(MODEL_HANDLERS)
    served = _served(catalog)
    torchserve = TorchServeServer(served, tmp_path_factory.mktemp("torchserve"))
    kserve = KServeServer(served, tmp_path_factory.mktemp("kserve"))
    servers: list[LocalServer] = [torchserve, kserve]
    statuses: dict[str, dict[str, list[int]]] = {}
    exported: dict[str, Exported] = {}
    try:
        for server in servers:
            server.start()
        for server in servers:
            server.wait_ready()
        with httpx.Client(timeout=30, trust_env=False) as http:
            for server in servers:
                statuses[server.runtime] = _send_examples(server, catalog, http)
            statuses["torchserve"]["digits"].append(_torchserve_5xx(torchserve, http, "digits"))
            statuses["kserve"]["digits"].append(_kserve_5xx(kserve, http, "digits"))
            for server in servers:
                answer = http.get(server.metrics_url())
                assert answer.status_code == 200, answer.text
                exported[server.runtime] = parse_exposition(server.runtime, answer.text)
    finally:
        for server in servers:
            server.stop()
    return Scrapes(exported, Traffic(statuses))


# -- which server proves which source ------------------------------------------------------------------


def live_sources() -> list[MetricSource]:
    return [source for source in metric_sources.SOURCES if source.checked_live]


def runtime_of(source: MetricSource) -> str:
    """The real server that proves a live-checked source; a live source without one fails the check."""
    runtimes = {metric_sources.TORCHSERVE.name: "torchserve", metric_sources.KSERVE.name: "kserve"}
    if source.name not in runtimes:
        raise AssertionError(f"metric source {source.name!r} is marked checked_live, but no real server here "
                             f"exports it (sources with a server: {', '.join(runtimes)})")
    return runtimes[source.name]


# -- where the expressions come from -------------------------------------------------------------------


@dataclass(frozen=True)
class Expression:
    where: str  # the file (and the rule or panel) the expression comes from
    expr: str


def rule_expressions() -> list[Expression]:
    """Every rule's expression, from the rule files the PrometheusRule objects are made of."""
    from infra.observability.rules import rule_expressions as expressions_of_rules

    return [Expression(f"infra/observability/rules/{where}", expr) for where, expr in expressions_of_rules()]


def panel_expressions() -> list[Expression]:
    """Every panel query and every `label_values(selector, label)` variable, as Prometheus receives them.

    Grafana's variables stand for label values, never for names, so any value serves to parse them. A
    variable's label must be on the series it lists: `count by (label) (selector)` makes it a label the
    expression needs.
    """
    from infra.observability import dashboards

    def concrete(expr: str) -> str:
        return dashboards.substitute(expr, dict.fromkeys(dashboards.variables_in(expr) - set(
            dashboards.GRAFANA_BUILTINS), "x"))

    where = "infra/observability/dashboards.py"
    found = [Expression(f"{where} {panel}", concrete(expr)) for panel, expr in dashboards.panel_expressions()]
    found += [Expression(f"{where} {variable}", f"count by ({label}) ({concrete(selector)})")
              for variable, selector, label in dashboards.variable_queries()]
    return found


def unreadable_series(expressions: Iterable[Expression], exported: Mapping[str, Exported],
                      source_of: Callable[[str], MetricSource | None]) -> list[str]:
    """One line per series an expression reads from a live-checked source that its server does not export."""
    problems = []
    for expression in expressions:
        for use in sorted(series_used(expression.expr), key=lambda u: u.metric):
            source = source_of(use.metric)
            if source is None or not source.checked_live:
                continue
            problem = exported[runtime_of(source)].problem(use.metric, use.labels)
            if problem:
                problems.append(f"{expression.where}: {use.metric} in {expression.expr!r}: {problem}")
    return problems


# -- the checks ----------------------------------------------------------------------------------------


def test_parsing_keeps_sample_names_as_exposed() -> None:
    """TorchServe's style (a counter without `_total`, a trailing comma) and prometheus_client's style."""
    text = "\n".join([
        "# HELP Requests5XX Torchserve prometheus counter metric with unit: Count",
        "# TYPE Requests5XX counter",
        'Requests5XX{Level="Host",Hostname="vm",} 1.0',
        "# TYPE ts_inference_requests_total counter",
        'ts_inference_requests_total{model_name="digits",model_version="default",hostname="vm",} 3.0',
        "# TYPE GPUUtilization gauge",
        "# TYPE request_predict_seconds histogram",
        'request_predict_seconds_bucket{le="0.005",model_name="digits"} 2.0',
        'request_predict_seconds_bucket{le="+Inf",model_name="digits"} 3.0',
        'request_predict_seconds_count{model_name="digits"} 3.0',
        'request_predict_seconds_sum{model_name="digits"} 0.01',
        "# TYPE aip_inference_requests_total counter",
        'aip_inference_requests_total{model_name="digits",code="400"} 2.0',
        "# TYPE aip_inference_requests_created gauge",
        'aip_inference_requests_created{model_name="digits",code="400"} 1.7e9',
    ]) + "\n"
    exported = parse_exposition("test", text)
    assert set(exported.series) == {"Requests5XX", "ts_inference_requests_total", "request_predict_seconds_bucket",
                                    "request_predict_seconds_count", "request_predict_seconds_sum",
                                    "aip_inference_requests_total", "aip_inference_requests_created"}
    assert exported.series["Requests5XX"] == {frozenset({"Level", "Hostname"})}
    assert exported.series["request_predict_seconds_bucket"] == {frozenset({"le", "model_name"})}
    assert exported.value("request_predict_seconds_bucket", le="+Inf") == 3
    assert exported.value("aip_inference_requests_total", code="400") == 2
    assert exported.declared == {"GPUUtilization"}
    assert exported.problem("Requests5XX_total", {"Level"}) is not None


def test_traffic_reached_every_status_class(scrapes: Scrapes) -> None:
    for runtime, by_model in scrapes.traffic.statuses.items():
        classes = {status // 100 for statuses in by_model.values() for status in statuses}
        assert classes == {2, 4, 5}, f"{runtime}: {dict(by_model)}"


def test_torchserve_exports_what_the_documentation_promises(scrapes: Scrapes) -> None:
    """docs/observability.md "Metric sources": names and labels checked against the real TorchServe."""
    torchserve = scrapes.exported["torchserve"]
    expected = {name: {"model_name", "model_version"} for name in (
        "ts_inference_requests_total", "ts_inference_latency_microseconds", "ts_queue_latency_microseconds")}
    expected.update({name: {"Level", "Hostname"} for name in ("Requests2XX", "Requests4XX", "Requests5XX")})
    assert {name: torchserve.problem(name, labels) for name, labels in expected.items()} == dict.fromkeys(expected)
    # Counted, not only declared: the 503 is in Requests5XX, every example in the model's requests.
    assert torchserve.value("Requests5XX") == 1
    assert torchserve.value("ts_inference_requests_total", model_name="ranker") == len(
        scrapes.traffic.statuses["torchserve"]["ranker"])


def test_the_kserve_request_counter_counts_each_status(scrapes: Scrapes) -> None:
    kserve = scrapes.exported["kserve"]
    for model, statuses in scrapes.traffic.statuses["kserve"].items():
        counted = {code: kserve.value("aip_inference_requests_total", model_name=model, code=str(code))
                   for code in set(statuses)}
        assert counted == {code: statuses.count(code) for code in set(statuses)}, model
    # The counter's labels are exactly these: every label is a new series per value.
    assert kserve.series["aip_inference_requests_total"] == {frozenset({"model_name", "code"})}


def test_the_checker_names_what_was_exported_instead(scrapes: Scrapes) -> None:
    torchserve, kserve = scrapes.exported["torchserve"], scrapes.exported["kserve"]
    wrong_name = torchserve.problem("ts_inference_requests", {"model_name"})
    assert wrong_name is not None and "exports no series named ts_inference_requests;" in wrong_name
    assert "ts_inference_requests_total" in wrong_name
    wrong_label = kserve.problem("request_predict_seconds_bucket", {"model", "le", "namespace"})
    assert wrong_label is not None and "without label(s) model (needed: le, model)" in wrong_label
    assert "{le, model_name}" in wrong_label
    declared_only = torchserve.problem("GPUUtilization", set())
    assert declared_only is not None and "declared by # TYPE, but no series" in declared_only

    def local_source(metric: str) -> MetricSource | None:
        return MetricSource("torchserve", "test", {}, checked_live=True) if metric.startswith("ts_") else None

    expressions = [Expression("a.rules.yaml: Good", "sum by (namespace, model_name) "
                                                   "(rate(ts_inference_requests_total[5m]))"),
                   Expression("b.rules.yaml: Bad", "sum by (model) (rate(ts_inference_requests_total[5m]))"),
                   Expression("c.rules.yaml: Recorded", "aip:model_requests:rate5m > 0")]
    problems = unreadable_series(expressions, scrapes.exported, local_source)
    assert len(problems) == 1 and problems[0].startswith("b.rules.yaml: Bad: ts_inference_requests_total in ")
    assert "without label(s) model " in problems[0]


def test_the_live_checked_metric_lists_match_the_real_servers(scrapes: Scrapes) -> None:
    """Each name and label in metric_sources.py's live-checked lists is exported: the lists cannot drift."""
    sources = live_sources()
    assert {runtime_of(source) for source in sources} == set(RUNTIMES), [s.name for s in sources]
    problems = [f"metric_sources.py {source.name}: {problem}" for source in sources
                for metric, labels in sorted(source.metrics.items())
                if (problem := scrapes.exported[runtime_of(source)].problem(metric, labels))]
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("expressions", [rule_expressions, panel_expressions], ids=["rules", "dashboards"])
def test_rules_and_panels_read_only_exported_series(scrapes: Scrapes,
                                                    expressions: Callable[[], list[Expression]]) -> None:
    found = expressions()
    assert found, f"{expressions.__name__}() found no expressions"
    problems = unreadable_series(found, scrapes.exported, metric_sources.source_of)
    assert problems == [], "\n".join(problems)
