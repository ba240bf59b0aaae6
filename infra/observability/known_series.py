"""Which series exist, with which labels: the check every rule and dashboard query must pass.

A series exists when an exporter exports it (`metric_sources`, plus the labels the scrape adds) or a
recording rule produces it (with the labels its expression leaves, given the raw series' labels).
"""

from __future__ import annotations

from functools import cache

from infra.observability.metric_sources import TARGET_LABELS, known_metrics
from infra.observability.promql import series_used
from infra.observability.rules import recorded_labels


@cache
def exported_labels() -> dict[str, frozenset[str]]:
    """Exported metric -> the labels its series may carry: the exporter's and the scrape's."""
    return {metric: labels | TARGET_LABELS for metric, labels in known_metrics().items()}


@cache
def recorded_series_labels() -> dict[str, frozenset[str]]:
    """Recorded metric -> the labels its series may carry."""
    return recorded_labels(exported_labels())


def series_labels(metric: str) -> frozenset[str] | None:
    """The labels a metric's series may carry; None when no exporter exports it and no rule records it."""
    return recorded_series_labels().get(metric, exported_labels().get(metric))


def unknown_series(expr: str) -> list[str]:
    """Metrics ``expr`` reads that no exporter exports and no rule records, or labels they do not carry."""
    problems = []
    for use in sorted(series_used(expr), key=lambda u: u.metric):
        recorded = use.metric in recorded_series_labels()
        carried = series_labels(use.metric)
        if carried is None:
            problems.append(f"{use.metric}: neither documented in metric_sources.py nor recorded by a rule")
        elif not use.labels <= carried:
            where = "its recording rule keeps" if recorded else "its exporter and the scrape give"
            problems.append(f"{use.metric}: labels {sorted(use.labels - carried)} are not among those {where} "
                            f"({sorted(carried)})")
    return problems
