"""What a PromQL expression reads (metric names, the labels it needs) and what its result carries."""

from __future__ import annotations

import pytest

from infra.observability.promql import PromQLError, SeriesUse, output_labels, series_used


def uses(*pairs: tuple[str, set[str]]) -> set[SeriesUse]:
    return {SeriesUse(metric, frozenset(labels)) for metric, labels in pairs}


@pytest.mark.parametrize(("expr", "expected"), [
    ('rate(ts_inference_requests_total{model_name="digits"}[5m])',
     uses(("ts_inference_requests_total", {"model_name"}))),
    ("sum by (team, namespace) (rate(Requests2XX[5m]))", uses(("Requests2XX", {"team", "namespace"}))),
    ("sum without (pod) (rate(Requests2XX[5m]))", uses(("Requests2XX", set()))),
    ("histogram_quantile(0.95, sum by (le, model_name) (rate(request_predict_seconds_bucket[5m])))",
     uses(("request_predict_seconds_bucket", {"le", "model_name"}))),
    # `on` labels are needed on both sides; `group_left(x)` copies x from the right-hand side.
    ("a * on (node) group_left (gpu_pool) b", uses(("a", {"node"}), ("b", {"node", "gpu_pool"}))),
    ("a * on (node) group_right (team) b", uses(("a", {"node", "team"}), ("b", {"node"}))),
    ("a / ignoring (code) b", uses(("a", set()), ("b", set()))),
    # label_replace: the label it writes is not needed below it, the one it reads is.
    ('sum by (team) (label_replace(kube_pod_info, "team", "$1", "namespace", "(.+)"))',
     uses(("kube_pod_info", {"namespace"}))),
    # An empty source label reads nothing: this only sets a constant label.
    ('sum by (team, code_class) (label_replace(rate(Requests2XX[5m]), "code_class", "2xx", "", ""))',
     uses(("Requests2XX", {"team"}))),
    ('label_join(up, "target", ":", "job", "instance")', uses(("up", {"job", "instance"}))),
    ('absent(up{job="x"})', uses(("up", {"job"}))),
    ("max_over_time(DCGM_FI_DEV_GPU_UTIL[1h:5m])", uses(("DCGM_FI_DEV_GPU_UTIL", set()))),
    ('{__name__="up", job="x"}', uses(("up", {"job"}))),
    # A name given only by a pattern is reported as the pattern: no real metric has that name.
    ('rate({__name__=~"Requests.XX"}[5m])', uses(("{__name__=~'Requests.XX'}", set()))),
    ("vector(1) + time()", set()),
])
def test_series_used(expr: str, expected: set[SeriesUse]):
    assert series_used(expr) == expected


@pytest.mark.parametrize(("expr", "expected"), [
    ("sum by (team, namespace) (x)", {"team", "namespace"}),
    ("sum(x)", set()),
    ('sum without (pod) (x{job="a", pod="b"})', {"job"}),
    ('topk(3, x{job="a"})', {"job"}),
    ('count_values("version", x)', {"version"}),
    ('x{a="1", b="", c=~".*", d=~".+", e!="", f!~"", g!="z"}', {"a", "d", "e", "f"}),
    ('label_replace(sum by (namespace) (x), "team", "$1", "namespace", "(.+)")', {"namespace", "team"}),
    ("sum by (a, b) (x) / sum by (a, b) (y) > 0.05", {"a", "b"}),
    ("sum by (a, b) (x) > 1 and on (a) sum by (a) (y)", {"a", "b"}),
    ("sum by (a, b) (x) or 0 * sum by (a) (y)", {"a"}),
    ("sum by (a, b) (x) / on (a) sum by (a, b) (y)", {"a"}),
    ("sum by (a, b) (x) / ignoring (b) sum by (a) (y)", {"a"}),
    ("sum by (a) (x) * on (a) group_left (owner) sum by (a, owner) (y)", {"a", "owner"}),
    ("histogram_quantile(0.9, sum by (le, model_name) (rate(x_bucket[5m])))", {"model_name"}),
    ('absent(x{job="a", pod=~"b.*"})', {"job"}),
    ("1 - sum by (a) (x)", {"a"}),
    ("vector(1)", set()),
])
def test_output_labels(expr: str, expected: set[str]):
    assert output_labels(expr) == expected


def test_output_labels_of_recorded_metrics_come_from_their_rules():
    recorded = {"team:aip_inference_requests:rate5m": frozenset({"team", "namespace", "inferenceservice"})}
    assert output_labels("team:aip_inference_requests:rate5m > 1", recorded) == recorded[
        "team:aip_inference_requests:rate5m"]
    assert output_labels("team:aip_inference_requests:rate5m > 1") == frozenset()


def test_an_expression_that_does_not_parse_is_named_in_the_error():
    with pytest.raises(PromQLError, match="sum by"):
        series_used("sum by (team (x)")
