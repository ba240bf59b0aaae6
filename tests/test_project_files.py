"""The project files users and the Pulumi engine read: Pulumi.yaml, README, CI entry, style."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from infra.config.loader import DECLARED_KEYS, STACK_CONFIG_DIR
from infra.docs import update_readme
from infra.preview import Project, ProjectError

ROOT = Path(__file__).resolve().parents[1]
# The types Pulumi's project schema allows in a config declaration.
PULUMI_CONFIG_TYPES = {"string", "integer", "boolean", "array"}


def test_pulumi_yaml_runs_the_python_program_in_the_repo_virtualenv():
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert project["name"] == "ai-platform"
    assert project["runtime"] == {"name": "python", "options": {"toolchain": "pip", "virtualenv": ".venv"}}
    assert project["stackConfigDir"] == STACK_CONFIG_DIR
    assert (ROOT / project["main"] / "__main__.py").is_file()
    assert (ROOT / "requirements.txt").is_file()


def test_every_declared_key_has_a_pulumi_type_and_a_description():
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    for key, declaration in declared.items():
        assert declaration["type"] in PULUMI_CONFIG_TYPES, key
        assert declaration["description"].strip(), key


def test_declared_keys_are_exactly_the_scalar_keys_the_program_reads():
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    assert set(declared) == {f"ai-platform:{k}" for k in DECLARED_KEYS}


def test_pulumi_yaml_passes_the_engines_declaration_rules(tmp_path):
    Project.load(ROOT)
    broken = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    broken["config"]["aws:region"] = {"type": "string"}
    (tmp_path / "Pulumi.yaml").write_text(yaml.safe_dump(broken))
    with pytest.raises(ProjectError, match="aws:region is not namespaced by the project"):
        Project.load(tmp_path)


def test_readme_reference_sections_are_generated_from_the_code():
    assert not update_readme(ROOT / "README.md", Project.load(ROOT), check=True), "run `aip docs`"


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert "make test" in (ROOT / "README.md").read_text()


def test_code_is_ruff_clean():
    run = subprocess.run([sys.executable, "-m", "ruff", "check", str(ROOT)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
