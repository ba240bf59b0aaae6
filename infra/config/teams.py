"""Who may use the cluster: the teams the platform onboards and the extra principals it admits."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from infra.config.base import FrozenModel
from infra.config.fields import IamPrincipalArn, NamespaceName, TagValue, TeamName
from infra.config.serving import QuotaConfig


class TeamEntry(FrozenModel):
    """One team the platform onboards: its namespace, guardrails, serving identity and CI access."""

    name: TeamName = Field(description="Team name; also its namespace and its stacks' `team`.")
    cost_center: TagValue = Field(min_length=1, max_length=64,
                                  description="Cost center charged for the team's namespace and roles.")
    quota: QuotaConfig = Field(default_factory=QuotaConfig, description="The namespace's resource quota.")
    ci_principal_arn: IamPrincipalArn = Field(
        description="IAM role (or user) that runs the team's stacks; may deploy into the team's namespace only.")


# EKS access policies, by the name config uses for them.
# https://docs.aws.amazon.com/eks/latest/userguide/access-policy-permissions.html
ACCESS_POLICIES = {
    "clusterAdmin": "AmazonEKSClusterAdminPolicy",
    "admin": "AmazonEKSAdminPolicy",
    "edit": "AmazonEKSEditPolicy",
    "view": "AmazonEKSViewPolicy",
}


class AccessEntryConfig(FrozenModel):
    """An IAM principal admitted to the cluster: a second CI role, an operator group's role, an auditor."""

    principal_arn: IamPrincipalArn = Field(description="IAM role or user ARN.")
    access_policy: Literal["clusterAdmin", "admin", "edit", "view"] = Field(
        description="EKS access policy: `clusterAdmin` (runs the platform stack), `admin`, `edit` or `view`.")
    namespaces: tuple[NamespaceName, ...] = Field(
        default=(), description="Limit the policy to these namespaces; empty means the whole cluster.")

    @field_validator("namespaces")
    @classmethod
    def _scoped_policy(cls, value: tuple[str, ...], info) -> tuple[str, ...]:
        if value and info.data.get("access_policy") == "clusterAdmin":
            raise ValueError("cannot scope clusterAdmin to namespaces; use admin or edit for namespaced access")
        if len(set(value)) != len(value):
            raise ValueError("lists a namespace twice")
        return value


def unique_principals(entries: tuple[AccessEntryConfig, ...]) -> tuple[AccessEntryConfig, ...]:
    arns = [e.principal_arn for e in entries]
    repeated = sorted({a for a in arns if arns.count(a) > 1})
    if repeated:
        raise ValueError(f"each principal may have one access entry; repeated: {', '.join(repeated)}")
    return entries
