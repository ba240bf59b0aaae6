"""Shared helpers of the deploy-check tests: stack lists, parsed configs, and seeding defects into previews.

A seeded preview is a copy of a real one with a few records replaced, dropped or added; the real one
(cached for the session) is never changed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest

from infra.config import StackConfig, parse_stack_config
from infra.graph_checks import Finding
from infra.graph_checks.chart_values import UPSTREAM_CHARTS_ENV, upstream_charts_dir
from infra.graph_checks.custom_resources import CRDS_ENV
from infra.graph_checks.custom_resources import crds_dir as configured_crds_dir
from infra.preview import PreviewResult, Project
from infra.preview.runner import ResourceRecord
from tests.conftest import is_team_stack, shipped_stacks
from tests.prerequisites import unavailable

STACKS = shipped_stacks()
PLATFORM_STACKS = [s for s in STACKS if not is_team_stack(s)]
TEAM_STACKS = [s for s in STACKS if is_team_stack(s)]


@pytest.fixture(scope="session")
def stack_config(project: Project) -> Callable[[str], StackConfig]:
    """A shipped stack's config, parsed as the program parses it."""

    def get(stack: str) -> StackConfig:
        values = project.stack_config(stack)
        return parse_stack_config(values.values, project=project.name, stack=stack,
                                  secret_keys=values.secret_keys, secure_paths=values.secure_paths)

    return get


@pytest.fixture(scope="session")
def charts_dir() -> Path:
    """The pinned charts' upstream values; a skip saying how to get them (a failure under CI)."""
    folder = upstream_charts_dir()
    if folder is None:
        unavailable(f"chart values are checked against the pinned charts' upstream values only when "
                    f"{UPSTREAM_CHARTS_ENV} names their folder (CI sets it)")
    return folder


@pytest.fixture(scope="session")
def crds_dir() -> Path:
    """The upstream CRDs of the custom resources; a skip saying how to get them (a failure under CI)."""
    folder = configured_crds_dir()
    if folder is None:
        unavailable(f"custom resources are checked against their upstream CRDs only when {CRDS_ENV} names their "
                    "folder (`make crds` fetches them; CI sets it)")
    return folder


def named(result: PreviewResult, type_token: str, name: str) -> ResourceRecord:
    """The one record of a type with a name; fails when there is none."""
    found = [r for r in result.resources if r.type == type_token and r.name == name]
    assert len(found) == 1, f"expected one {type_token} named {name}, found {len(found)}"
    return found[0]


def with_options(record: ResourceRecord, **options: Any) -> ResourceRecord:
    return dataclasses.replace(record, options={**record.options, **options})


def with_inputs(record: ResourceRecord, **inputs: Any) -> ResourceRecord:
    """A copy with some inputs set; an input set to None is removed."""
    merged = {**record.inputs, **inputs}
    return dataclasses.replace(record, inputs={k: v for k, v in merged.items() if v is not None})


def renamed(record: ResourceRecord, name: str) -> ResourceRecord:
    """A copy registered under another name (and so another URN)."""
    return dataclasses.replace(record, name=name, urn=record.urn.removesuffix(record.name) + name)


def reference(provider: ResourceRecord) -> str:
    """A provider reference (``<urn>::<id>``) as the engine records it."""
    return f"{provider.urn}::{provider.name}-id"


def seeded(result: PreviewResult, *, replace: Iterable[ResourceRecord] = (), drop: Iterable[str] = (),
           add: Iterable[ResourceRecord] = ()) -> PreviewResult:
    """A copy of ``result`` with records replaced (matched by URN), dropped (by URN) and added."""
    replacements: Mapping[str, ResourceRecord] = {r.urn: r for r in replace}
    dropped = set(drop)
    resources = [replacements.get(r.urn, r) for r in result.resources if r.urn not in dropped]
    return dataclasses.replace(result, resources=[*resources, *add], warnings=list(result.warnings))


def new_findings(check: Callable[..., list[Finding]], baseline: list[Finding], *args: Any) -> set[Finding]:
    """Findings a seeded defect adds to those of the real preview (ideally none)."""
    return set(check(*args)) - set(baseline)


def record(type_token: str, name: str, *, inputs: Mapping[str, Any] | None = None, depends_on: Iterable[str] = (),
           provider: str | None = None, parent: str = "", **options: Any) -> ResourceRecord:
    """A hand-made record, for unit tests over tiny graphs."""
    return ResourceRecord(urn=f"urn:pulumi:test::ai-platform::{type_token}::{name}", type=type_token, name=name,
                          parent=parent, custom=True, inputs=dict(inputs or {}),
                          options={"protect": False, "retainOnDelete": False, "deleteBeforeReplace": False,
                                   "provider": provider, "dependsOn": list(depends_on), "ignoreChanges": [],
                                   "read": False, **options})


def result_of(*records: ResourceRecord, stack: str = "test") -> PreviewResult:
    return PreviewResult(project="ai-platform", stack=stack, resources=list(records), outputs={})
