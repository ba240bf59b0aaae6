"""Finding Grafana's values in a Helm release of grafana or kube-prometheus-stack."""

from __future__ import annotations

from typing import Any

from policies.props import get

RELEASE = "kubernetes:helm.sh/v3:Release"


def grafana_values(resource_type: str, props: Any) -> Any | None:
    """Grafana's chart values, or None when the resource is not a Grafana release."""
    if resource_type != RELEASE:
        return None
    chart = str(get(props, "chart", default="")).rstrip("/").rsplit("/", 1)[-1]
    values = get(props, "values", default={})
    if chart == "grafana":
        return values
    if chart == "kube-prometheus-stack":
        return get(values, "grafana", default={})
    return None
