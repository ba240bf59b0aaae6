"""How a pinned chart becomes a helm.v3.Release's arguments."""

from __future__ import annotations

from typing import Any

from infra.versions import HelmChart


def release_args(chart: HelmChart) -> dict[str, Any]:
    """Chart, exact version and repository (OCI charts carry the registry in the chart reference)."""
    args: dict[str, Any] = {"chart": chart.chart, "version": chart.version}
    if chart.repository:
        args["repository_opts"] = {"repo": chart.repository}
    return args
