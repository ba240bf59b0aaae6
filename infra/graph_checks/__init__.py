"""Deploy checks over the whole previewed resource graph.

Object-by-object validation cannot see what spans resources: who can reach and authenticate to the
cluster, what waits for what, what survives a destroy and a recreate, and what a Helm chart's own
defaults add to the values we set. Each module here reads a stack's offline preview and returns
:class:`Finding` objects; an empty list means the check holds.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from infra.config import StackConfig
from infra.graph_checks import ordering, reachability, recreate
from infra.graph_checks.chart_values import check_chart_values
from infra.graph_checks.custom_resources import check_custom_resources
from infra.graph_checks.findings import Finding
from infra.graph_checks.graph import ResourceGraph
from infra.graph_checks.identity import check_identity
from infra.preview.runner import PreviewResult

Check = Callable[[ResourceGraph, StackConfig], list[Finding]]

# The checks that need only the stack's own preview and config, in the order their findings are reported.
CHECKS: list[Check] = [reachability.check, ordering.check, recreate.check]


def run_deploy_checks(result: PreviewResult, config: StackConfig, *, platform: PreviewResult | None = None,
                      charts_dir: Path | None = None, crds_dir: Path | None = None) -> list[Finding]:
    """Every deploy check over one stack's preview.

    Args:
        result: The stack's offline preview.
        config: The stack's parsed config.
        platform: For a team stack, the preview of the platform stack it builds on (identity needs the
            access the platform grants the team's CI).
        charts_dir: The pinned charts' upstream values (`AIP_UPSTREAM_CHARTS_DIR`); without it the chart
            values are not checked.
        crds_dir: The upstream CRDs of the custom resources (`AIP_CRDS_DIR`); without it custom resources are
            not checked against their schemas.
    """
    graph = ResourceGraph(result)
    findings = [finding for check in CHECKS for finding in check(graph, config)]
    findings += check_identity(result, config, platform)
    if charts_dir is not None:
        findings += check_chart_values(result, charts_dir)
    if crds_dir is not None:
        findings += check_custom_resources(result, crds_dir)
    return findings


__all__ = ["CHECKS", "Finding", "ResourceGraph", "run_deploy_checks"]
