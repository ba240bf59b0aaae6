"""A team stack: only team-scoped resources, on top of a platform stack it reads but never changes."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.components.team_workspace import TeamWorkspace, TeamWorkspaceArgs
from infra.config import TeamConfig
from infra.platform_outputs import PlatformReference
from infra.tagging import register_tagging


def build_team(config: TeamConfig) -> dict[str, Any]:
    """Create the team stack's resources and return its outputs."""
    register_tagging(config.tags)
    prefix = f"aip-{config.team}-{config.environment}"
    platform = PlatformReference(f"{prefix}-platform", config.platform_stack)
    # Objects without an explicit namespace land in the team's, never in another one.
    provider = k8s.Provider(f"{prefix}-k8s", kubeconfig=platform.require("kubeconfig"), namespace=config.team)
    workspace = TeamWorkspace(prefix, TeamWorkspaceArgs(
        team=config.team, region=config.region, platform=platform, provider=provider))
    return {
        "team": config.team,
        "environment": config.environment,
        "namespace": workspace.namespace,
        "modelPrefix": pulumi.Output.concat("s3://", platform.require("modelStoreBucket"), "/",
                                            workspace.model_prefix),
        "servingRoleArn": workspace.role_arn,
        "clusterName": platform.require("clusterName"),
    }
