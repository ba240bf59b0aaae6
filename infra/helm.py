"""How a pinned chart becomes a helm.v3.Release's arguments."""

from __future__ import annotations

from typing import Any

from infra.versions import HelmChart

# How long Helm waits for a release's workloads to become ready. The provider's default (300 s) is too short
# for a first deploy: images are pulled onto brand-new nodes, and a pool may first have to scale up from zero.
FIRST_DEPLOY_TIMEOUT_S = 900


def release_args(chart: HelmChart, *, timeout: int = FIRST_DEPLOY_TIMEOUT_S) -> dict[str, Any]:
    """Chart, exact version, repository (OCI charts carry the registry in the chart reference) and timeout."""
    args: dict[str, Any] = {"chart": chart.chart, "version": chart.version, "timeout": timeout}
    if chart.repository:
        args["repository_opts"] = {"repo": chart.repository}
    return args
