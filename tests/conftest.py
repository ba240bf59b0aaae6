"""Shared fixtures: the project on disk, cached stack previews, and a per-test mock runner for components."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.preview import PreviewResult, Project, run_preview
from infra.preview.project import StackConfig
from infra.preview.runner import ResourceRecord, fabricated_outputs, run_program

ROOT = Path(__file__).resolve().parents[1]


def shipped_stacks() -> list[str]:
    """Every stack with a file in stacks/, sorted."""
    return sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in (ROOT / "stacks").glob("Pulumi.*.yaml"))


def _stack_values(stack: str) -> dict[str, Any]:
    return yaml.safe_load((ROOT / "stacks" / f"Pulumi.{stack}.yaml").read_text())["config"]


def is_team_stack(stack: str) -> bool:
    """A team stack sets `ai-platform:team`; platform stacks (recovery stacks such as prod-dr among them) do not."""
    return bool(_stack_values(stack).get("ai-platform:team"))


def environment_of(stack: str) -> str:
    """The environment a shipped stack declares (`prod-dr` is a prod stack)."""
    return str(_stack_values(stack)["ai-platform:environment"])


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


def aip(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """`aip` as a user runs it: a real process in ``cwd``, its exit code and both streams."""
    return subprocess.run([sys.executable, "-m", "infra.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture
def scratch_project(tmp_path: Path) -> Path:
    """A copy of the project's stack files, with the real program, to break on purpose."""
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    project["main"] = str(ROOT / "infra")
    (tmp_path / "Pulumi.yaml").write_text(yaml.safe_dump(project))
    shutil.copytree(ROOT / "stacks", tmp_path / "stacks")
    return tmp_path


def only(result: PreviewResult, type_token: str) -> ResourceRecord:
    """The single resource of a type; fails when there are none or several."""
    found = result.of_type(type_token)
    assert len(found) == 1, f"expected one {type_token}, found {[r.name for r in found]}"
    return found[0]


def policy_of(record: ResourceRecord, key: str = "policy") -> dict[str, Any]:
    return json.loads(record.inputs[key])
