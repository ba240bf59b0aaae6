"""`aip promote`, `aip rollback` and `aip canary start` as a user runs them: real processes on a scratch copy of the
stack files; the diff on success, exit 2 with one message and the file untouched on every refusal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import aip

STABLE, PACKAGED = "ba9876543210", "0123456789ab"
CANARY_LINE = f"      canary: {{trafficPercent: 10, stableVersion: {STABLE}}}  # started by CI\n"
ANCHOR = "      gpuPool: inference-l40s\n"


@pytest.fixture
def stack(scratch_project: Path, tmp_path: Path, monkeypatch) -> Path:
    """The scratch vision-prod stack with a canary of digits, and a package manifest whose digits is PACKAGED."""
    path = scratch_project / "stacks" / "Pulumi.vision-prod.yaml"
    path.write_text(path.read_text().replace(ANCHOR, ANCHOR + CANARY_LINE))
    manifest = tmp_path / "packages" / "manifest.json"
    manifest.parent.mkdir()
    manifest.write_text(json.dumps({"models": {"digits": {"version": PACKAGED, "files": {}, "sha256": {}}}}))
    monkeypatch.setenv("AIP_MODEL_PACKAGES", str(manifest))
    return path


def run(project: Path, *args: str):
    done = aip(*args, "--project-dir", str(project), cwd=project)
    assert "Traceback" not in done.stderr
    return done


def test_promote_pins_the_packaged_version_and_shows_the_diff(stack: Path, scratch_project: Path):
    before = stack.read_text()
    done = run(scratch_project, "promote", "--stack", "vision-prod", "--model", "digits")
    assert done.returncode == 0, done.stderr
    assert stack.read_text() == before.replace(CANARY_LINE, f"      version: {PACKAGED}\n")
    lines = done.stdout.splitlines()
    assert lines[:2] == ["--- stacks/Pulumi.vision-prod.yaml (before)", "+++ stacks/Pulumi.vision-prod.yaml"]
    assert [line for line in lines if line[:1] in "+-" and line[:3] not in ("+++", "---")] == [
        "-" + CANARY_LINE.rstrip("\n"), f"+      version: {PACKAGED}"]
    assert f"digits: promoted {PACKAGED}, which now serves every request" in done.stdout


def test_rollback_pins_the_stable_version(stack: Path, scratch_project: Path):
    before = stack.read_text()
    done = run(scratch_project, "rollback", "--stack", "vision-prod", "--model", "digits")
    assert done.returncode == 0, done.stderr
    assert stack.read_text() == before.replace(CANARY_LINE, f"      version: {STABLE}\n")
    assert f"digits: rolled back to {STABLE}, which now serves every request" in done.stdout


def test_a_canary_starts_beside_the_pin_and_not_twice(stack: Path, scratch_project: Path):
    assert run(scratch_project, "rollback", "--stack", "vision-prod", "--model", "digits").returncode == 0
    pinned = stack.read_text()
    done = run(scratch_project, "canary", "start", "--stack", "vision-prod", "--model", "digits",
               "--traffic-percent", "25")
    assert done.returncode == 0, done.stderr
    assert stack.read_text() == pinned.replace(
        f"      version: {STABLE}\n", f"      canary: {{trafficPercent: 25, stableVersion: {STABLE}}}\n")
    # Promoted, the packaged version is the pin: nothing left to roll out (exit 3), file unchanged.
    assert run(scratch_project, "promote", "--stack", "vision-prod", "--model", "digits").returncode == 0
    promoted = stack.read_text()
    again = run(scratch_project, "canary", "start", "--stack", "vision-prod", "--model", "digits")
    assert (again.returncode, stack.read_text()) == (3, promoted)
    assert f"serves {PACKAGED} already (its version pin): nothing to roll out" in again.stderr


REFUSALS = [
    (("rollback", "--stack", "vision-staging", "--model", "digits"),
     "error: no stack 'vision-staging': stacks/Pulumi.vision-staging.yaml does not exist (stacks: "),
    (("promote", "--stack", "vision-prod", "--model", "mnist"),
     "error: stacks/Pulumi.vision-prod.yaml: ai-platform:models has no model 'mnist' (models: digits)"),
    (("rollback", "--stack", "search-prod", "--model", "ranker"),
     "error: stacks/Pulumi.search-prod.yaml: ranker (ai-platform:models[0]) has no canary: nothing to roll back"),
    (("promote", "--stack", "vision-prod", "--model", "digits", "--version", STABLE),
     f"error: stacks/Pulumi.vision-prod.yaml: ai-platform:models[0].canary.stableVersion is {STABLE} already"),
    (("canary", "start", "--stack", "vision-prod", "--model", "digits"),
     "error: stacks/Pulumi.vision-prod.yaml: digits (ai-platform:models[0]) has a canary already"),
    (("canary", "start", "--stack", "search-prod", "--model", "ranker"),
     "error: stacks/Pulumi.search-prod.yaml: ranker (ai-platform:models[0]) has no version pin"),
    (("rollback", "--stack", "../stacks/Pulumi.vision-prod", "--model", "digits"),
     "error: --stack '../stacks/Pulumi.vision-prod': not a stack name (letters, digits, '-', '_' and '.', as in "
     "vision-prod), not a file or path"),
    (("promote", "--stack", "", "--model", "digits"), "error: --stack '': not a stack name"),
    (("promote", "--stack", "vision-prod", "--model", "digits", "--version", ""),
     "error: the canary's version '' is not a packaged version"),
]


@pytest.mark.parametrize(("args", "message"), REFUSALS, ids=["unknown-stack", "unknown-model", "no-canary",
                                                           "canary-ran-the-stable-version", "canary-already",
                                                           "no-pin", "path-as-stack", "empty-stack",
                                                           "empty-version"])
def test_refusals_exit_2_with_the_reason_and_leave_the_files_alone(stack: Path, scratch_project: Path, args, message):
    files = {p: p.read_bytes() for p in (scratch_project / "stacks").iterdir()}
    done = run(scratch_project, *args)
    assert done.returncode == 2
    assert done.stderr.startswith(message), done.stderr
    assert done.stdout == ""
    assert {p: p.read_bytes() for p in (scratch_project / "stacks").iterdir()} == files


def test_an_unparseable_stack_file_is_refused(stack: Path, scratch_project: Path):
    stack.write_text(stack.read_text() + "  ai-platform:team: [\n")
    before = stack.read_bytes()
    done = run(scratch_project, "rollback", "--stack", "vision-prod", "--model", "digits")
    assert done.returncode == 2
    assert done.stderr.startswith("error: stacks/Pulumi.vision-prod.yaml: not valid YAML: ")
    assert stack.read_bytes() == before


def test_a_result_that_would_not_validate_is_not_written(stack: Path, scratch_project: Path):
    stack.write_text(stack.read_text().replace("costCenter: vision-ml", "costCenter: ''"))
    before = stack.read_bytes()
    done = run(scratch_project, "rollback", "--stack", "vision-prod", "--model", "digits")
    assert done.returncode == 2
    assert done.stderr.startswith("error: stacks/Pulumi.vision-prod.yaml: the edited file would not be a valid stack "
                                  "config, so it was not written:\n  - ai-platform:costCenter"), done.stderr
    assert stack.read_bytes() == before


def test_without_a_package_the_canary_version_must_be_given(stack: Path, scratch_project: Path, monkeypatch,
                                                            tmp_path: Path):
    monkeypatch.setenv("AIP_MODEL_PACKAGES", str(tmp_path / "none.json"))
    before = stack.read_bytes()
    done = run(scratch_project, "promote", "--stack", "vision-prod", "--model", "digits")
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: the canary runs the packaged version of digits, which is not known: "
                                  f"{tmp_path / 'none.json'} does not exist: run `aip package` first (or pass "
                                  "--version)"), done.stderr
    assert stack.read_bytes() == before


@pytest.mark.parametrize("command", [("promote",), ("rollback",), ("canary", "start")])
def test_every_command_explains_itself(command):
    done = aip(*command, "--help")
    assert done.returncode == 0
    assert "exit codes:" in done.stdout and "--stack STACK" in done.stdout and "--model MODEL" in done.stdout


def test_a_traffic_share_outside_1_to_99_is_a_usage_error(stack: Path, scratch_project: Path):
    done = run(scratch_project, "canary", "start", "--stack", "vision-prod", "--model", "digits",
               "--traffic-percent", "100")
    assert done.returncode == 2
    assert "argument --traffic-percent: 100 is not between 1 and 99" in done.stderr


def test_an_empty_version_is_checked_not_replaced_by_the_packaged_one(stack: Path, scratch_project: Path):
    assert run(scratch_project, "rollback", "--stack", "vision-prod", "--model", "digits").returncode == 0
    pinned = stack.read_bytes()
    done = run(scratch_project, "canary", "start", "--stack", "vision-prod", "--model", "digits", "--version", "")
    assert done.returncode == 2
    assert done.stderr.startswith("error: the packaged version '' is not a packaged version"), done.stderr
    assert stack.read_bytes() == pinned


def test_an_unreadable_manifest_is_one_message(monkeypatch):
    from infra.cli import _packaged_version
    from infra.delivery.stack_edit import StackEditError

    def unreadable(path: Path) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("infra.serving.manifest.load_manifest", unreadable)
    with pytest.raises(StackEditError, match=r"the canary runs the packaged version of digits, which is not known: "
                                             r".*: Permission denied \(or pass --version\)$"):
        _packaged_version("digits")


def test_a_crlf_stack_file_is_edited_keeping_its_line_endings(stack: Path, scratch_project: Path):
    stack.write_bytes(stack.read_bytes().replace(b"\n", b"\r\n"))
    done = run(scratch_project, "rollback", "--stack", "vision-prod", "--model", "digits")
    assert done.returncode == 0, done.stderr
    after = stack.read_bytes()
    assert b"\r\n" + f"      version: {STABLE}".encode() + b"\r\n" in after
    assert after.count(b"\n") == after.count(b"\r\n")
