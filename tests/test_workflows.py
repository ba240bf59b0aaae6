"""The GitHub workflows: zizmor's security audit and GitHub's workflow schema find nothing, every action is pinned to a
commit, and the delivery workflow calls `aip` only with commands and options that exist."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from infra.cli import _parser
from tests.conftest import ROOT

WORKFLOWS_DIR = ROOT / ".github" / "workflows"
WORKFLOWS = sorted(WORKFLOWS_DIR.glob("*.yml"))
BIN = Path(sys.executable).parent
DELIVERY = WORKFLOWS_DIR / "team-delivery.yml"
# `owner/repo[/path]@<40 hex> # vX.Y.Z`: a commit that cannot move, and the release it is, for people and Dependabot.
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$")


def run(*command: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in command], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_zizmor_finds_nothing_in_the_workflows():
    done = run(BIN / "zizmor", "--offline", "--no-progress", "--color", "never", WORKFLOWS_DIR)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "No findings to report" in done.stdout


def test_zizmor_fails_on_a_finding(tmp_path: Path):
    # The audit can fail: an unpinned action whose checkout keeps its credentials, and an injectable commit message.
    (tmp_path / "bad.yml").write_text(
        "name: bad\non: push\npermissions: {}\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n"
        "      - uses: actions/checkout@v4\n      - run: echo \"${{ github.event.head_commit.message }}\"\n")
    done = run(BIN / "zizmor", "--offline", "--no-progress", "--color", "never", tmp_path / "bad.yml")
    assert done.returncode != 0
    assert {"unpinned-uses", "artipacked", "template-injection"} <= set(re.findall(r"\[([a-z-]+)\]", done.stdout))


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=[w.name for w in WORKFLOWS])
def test_each_workflow_matches_githubs_schema(workflow: Path):
    done = run(BIN / "check-jsonschema", "--builtin-schema", "vendor.github-workflows", workflow)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=[w.name for w in WORKFLOWS])
def test_every_action_is_pinned_to_a_commit_with_its_release_in_a_comment(workflow: Path):
    uses = [line.split("uses:", 1)[1].strip() for line in workflow.read_text().splitlines() if "uses:" in line]
    assert uses
    assert [u for u in uses if not PINNED.match(u)] == []


def delivery() -> dict:
    return yaml.safe_load(DELIVERY.read_text())


def test_the_delivery_grants_each_job_only_what_it_uses():
    workflow = delivery()
    assert workflow["permissions"] == {}
    jobs = workflow["jobs"]
    assert {name: job["permissions"] for name, job in jobs.items()} == {
        "check": {"contents": "read", "security-events": "write"},
        "dev": {"contents": "read", "id-token": "write"},
        "staging": {"contents": "read", "id-token": "write"},
        "prod": {"contents": "write", "id-token": "write"},
    }
    # Deploys run in GitHub environments (required reviewers on prod), in order, and only after a merge.
    assert [(jobs[j].get("environment"), jobs[j]["needs"]) for j in ("dev", "staging", "prod")] == [
        ("dev", "check"), ("staging", ["check", "dev"]), ("prod", ["check", "staging"])]
    assert jobs["dev"]["if"] == "github.event_name == 'push'"


def test_aws_credentials_come_from_oidc_and_no_checkout_keeps_its_token():
    for name, job in delivery()["jobs"].items():
        for step in job["steps"]:
            action = step.get("uses", "").split("@")[0]
            if action == "actions/checkout":
                assert step["with"]["persist-credentials"] is False, name
            if action == "aws-actions/configure-aws-credentials":
                assert set(step["with"]) == {"role-to-assume", "aws-region"}, name
                assert step["with"]["role-to-assume"] == "${{ vars.AIP_DEPLOY_ROLE_ARN }}"


def test_no_expression_is_expanded_inside_a_script():
    # Values reach scripts through env: an expression in `run:` would be pasted into the shell as code.
    scripts = [step["run"] for job in delivery()["jobs"].values() for step in job["steps"] if "run" in step]
    assert scripts and [s for s in scripts if "${{" in s] == []


def aip_calls() -> list[list[str]]:
    """Every `aip` command line of the delivery workflow's scripts, continuation lines joined."""
    calls = []
    for job in delivery()["jobs"].values():
        for step in job["steps"]:
            script = step.get("run", "").replace("\\\n", " ")
            for match in re.finditer(r"\.venv/bin/aip ([^;|>\n]+?)(?:\s*(?:\|\||>)|;|\n|$)", script):
                calls.append(shlex.split(match.group(1)))
    return calls


def test_the_delivery_runs_the_whole_canary_cycle():
    commands = [" ".join(call[:next(i for i, w in enumerate([*call, "-"]) if w.startswith("-"))])
                for call in aip_calls()]
    assert commands == ["package", "preview", "canary start", "canary analyze", "promote", "rollback", "rollback"]


def test_every_aip_call_of_the_delivery_parses():
    parser = _parser()
    for call in aip_calls():
        # Shell variables stand for values: a number where a number is expected.
        args = ["10" if word == "$CANARY_PERCENT" else word for word in call]
        parsed = parser.parse_args(args)
        assert parsed.command in ("package", "preview", "canary", "promote", "rollback")
