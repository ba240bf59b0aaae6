"""Shared fixtures: the project on disk, cached stack previews, and a per-test mock runner for components."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from infra.preview import PreviewResult, Project, run_preview
from infra.preview.project import StackConfig
from infra.preview.runner import ResourceRecord, fabricated_outputs, run_program

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def project() -> Project:
    return Project.load(ROOT)


@pytest.fixture(scope="session")
def packaged_models() -> None:
    """Every model packaged into build/models (cached across runs), as `aip package` leaves it for a deploy."""
    from infra.serving.package import package_models

    package_models()


@pytest.fixture(scope="session")
def preview(project: Project, packaged_models: None) -> Callable[[str], PreviewResult]:
    """Offline preview of a shipped stack, computed once per test session."""
    cache: dict[str, PreviewResult] = {}

    def get(stack: str) -> PreviewResult:
        if stack not in cache:
            cache[stack] = run_preview(stack, project, cache=cache)
        return cache[stack]

    return get


@pytest.fixture
def run_component() -> Callable[..., PreviewResult]:
    """Run a small program (usually one component) under fresh mocks installed for this test only."""

    def run(build: Callable[[], Any], *, region: str = "us-east-1",
            stack_outputs: Callable[[str], Mapping[str, Any]] = fabricated_outputs) -> PreviewResult:
        return run_program(build, project_name="ai-platform", stack="test",
                           config=StackConfig(values={"aws:region": region}), stack_outputs=stack_outputs)

    return run


def only(result: PreviewResult, type_token: str) -> ResourceRecord:
    """The single resource of a type; fails when there are none or several."""
    found = result.of_type(type_token)
    assert len(found) == 1, f"expected one {type_token}, found {[r.name for r in found]}"
    return found[0]


def policy_of(record: ResourceRecord, key: str = "policy") -> dict[str, Any]:
    return json.loads(record.inputs[key])
