"""Disaster recovery of a platform stack: where its data is replicated to, or which stack a recovery stack restores.

A platform stack either *replicates* (its model store and log archive are copied by S3 into `region`) or, as the
recovery stack `<environment>-dr`, *restores from* a platform stack of the same environment: it builds a cluster
in that stack's recovery region on the replicas, and replicates nothing itself (so replication never loops).
See docs/recovery.md.
"""

from __future__ import annotations

from pydantic import Field, ValidationInfo, model_validator

from infra.config.base import FrozenModel
from infra.config.errors import problems_at_subkeys
from infra.config.fields import Region, StackReferenceName, StrictBool
from policies.defaults import DEFAULT_ALLOWED_REGIONS

# The suffix of a recovery stack's name: `prod-dr` restores `prod`.
RECOVERY_SUFFIX = "-dr"
# S3 Replication Time Control replicates 99.99% of objects within this many minutes (its only setting).
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/replication-time-control.html
RTC_MINUTES = 15


def recovery_stack_name(environment: str) -> str:
    """The name of the recovery stack of an environment's platform stack (`prod` -> `prod-dr`)."""
    return f"{environment}{RECOVERY_SUFFIX}"


class RecoveryConfig(FrozenModel):
    """Disaster recovery: the region the platform's data is replicated to, or the stack a recovery stack restores."""

    region: Region | None = Field(
        default=None, description="Recovery region: S3 replicates the model store and the log archive into replica "
                                  "buckets there (another approved region than `aws:region`). Required in prod.")
    replication_time_control: StrictBool | None = Field(
        default=None, description=f"S3 Replication Time Control: 99.99% of objects replicated within {RTC_MINUTES} "
                                  "minutes, with replication metrics (priced per GB). Default and required: true in "
                                  "prod; default false elsewhere (best effort, most objects within minutes).")
    restore_from: StackReferenceName | None = Field(
        default=None, description="Only in the recovery stack `<environment>-dr`: the platform stack "
                                  "(`<org>/ai-platform/<environment>`) whose replicas this stack serves from, in that "
                                  "stack's recovery region (set `aws:region` to it). Excludes `region`.")

    @model_validator(mode="after")
    def _replicates_or_restores(self, info: ValidationInfo) -> RecoveryConfig:
        # Every problem at once: the section's own, and (when the loader gives the stack in the context) those
        # against the stack, which check_recovery would otherwise only find once these are fixed.
        problems = self._own_problems()
        context = info.context or {}
        if "environment" in context:
            problems += stack_problems(self, environment=context.get("environment"), region=context.get("region"),
                                       project=context.get("project"))
        if problems:
            raise ValueError(problems_at_subkeys(problems))
        return self

    def _own_problems(self) -> list[tuple[str, str]]:
        problems = []
        if self.region is not None and self.restore_from is not None:
            problems.append(("restoreFrom", "a recovery stack replicates nothing (its data are the replicas of the "
                                            "stack it restores); set region or restoreFrom, not both"))
        if self.region is None and self.restore_from is None:
            problems.append(("", "needs region (replicate this stack's data there) or restoreFrom (this is the "
                                 "recovery stack of that platform stack)"))
        if self.replication_time_control is not None and self.region is None:
            problems.append(("replicationTimeControl", "is only used together with region"))
        if self.region is not None and self.region not in DEFAULT_ALLOWED_REGIONS:
            problems.append(("region", f"is not an approved region; allowed: {', '.join(DEFAULT_ALLOWED_REGIONS)}"))
        return problems

    @property
    def replicates(self) -> bool:
        return self.region is not None

    @property
    def restores(self) -> bool:
        return self.restore_from is not None


def stack_problems(value: RecoveryConfig, *, environment: str | None, region: str | None,
                   project: str | None) -> list[tuple[str, str]]:
    """What is wrong with the recovery section for this stack, as (sub-key, message) pairs."""
    problems = []
    if value.region is not None and value.region == region:
        problems.append(("region", f"must differ from aws:region ({region}): a replica in the same region is lost "
                                   "with it"))
    if value.restore_from is not None:
        _, stack_project, stack = value.restore_from.split("/")
        if project and stack_project != project:
            problems.append(("restoreFrom", f"must name a stack of this project (<org>/{project}/{environment})"))
        if environment and stack != environment:
            problems.append(("restoreFrom", f"must name the platform stack of this stack's environment "
                                            f"(.../{environment}), whose recovery stack this is"))
    if value.replication_time_control is False and environment == "prod":
        problems.append(("replicationTimeControl", f"must be true in prod: the recovery point objective of "
                                                   f"docs/recovery.md ({RTC_MINUTES} minutes) rests on it"))
    return problems


def check_recovery(value: RecoveryConfig | None, *, environment: str | None, region: str | None,
                   project: str | None) -> RecoveryConfig | None:
    """The platform's `recovery` section judged against the stack: required in prod, another region than the
    stack's, restoring only a platform stack of this project and environment; RTC defaulted per environment.

    Raises:
        ValueError: with the sub-key at fault marked (SUBKEY_MARK).
    """
    if value is None:
        if environment == "prod":
            raise ValueError("is required in prod: set region to the recovery region the model store and the log "
                             "archive are replicated to (see docs/recovery.md)")
        return None
    problems = stack_problems(value, environment=environment, region=region, project=project)
    if problems:
        raise ValueError(problems_at_subkeys(problems))
    if value.region is not None and value.replication_time_control is None:
        return value.model_copy(update={"replication_time_control": environment == "prod"})
    return value
