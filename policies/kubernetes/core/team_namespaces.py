"""What the team namespace policies share: which namespaces belong to teams, and what lives in them."""

from __future__ import annotations

from collections.abc import Iterable

from pulumi_policy import PolicyResource

from policies.props import get

NAMESPACE = "kubernetes:core/v1:Namespace"
TEAM_LABEL = "ai-platform.io/team"
PLATFORM_TEAM = "platform"


def team_namespaces(resources: Iterable[PolicyResource]) -> list[tuple[str, PolicyResource]]:
    """(namespace name, resource) for every Namespace labelled with a team other than the platform."""
    found = []
    for resource in resources:
        if resource.resource_type != NAMESPACE:
            continue
        team = get(resource.props, "metadata", "labels", TEAM_LABEL)
        if team and team != PLATFORM_TEAM:
            found.append((str(get(resource.props, "metadata", "name", default=resource.name)), resource))
    return found


def in_namespace(resources: Iterable[PolicyResource], type_token: str, namespace: str) -> list[PolicyResource]:
    return [r for r in resources
            if r.resource_type == type_token and get(r.props, "metadata", "namespace") == namespace]
