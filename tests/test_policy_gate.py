"""The offline policy gate in `aip preview`: JSON, SARIF, exit codes, waivers, non-compliant inputs blocked."""

from __future__ import annotations

import datetime
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from infra.preview.policy_gate import evaluate
from infra.preview.project import StackConfig
from infra.preview.runner import run_program
from policies.registry import ALL_POLICIES, PACK_NAME
from policies.waivers import Waiver, find_waiver
from tests.conftest import ROOT, aip

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "programs"
pytestmark = pytest.mark.integration


def program_project(tmp_path: Path, program: str) -> Path:
    """A prod project whose program is one of the deliberately non-compliant fixtures."""
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    project["main"] = str(FIXTURES / program)
    project.pop("config")
    (tmp_path / "Pulumi.yaml").write_text(yaml.safe_dump(project))
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "Pulumi.prod.yaml").write_text(
        "config:\n  aws:region: us-east-1\n  ai-platform:environment: prod\n")
    return tmp_path


def test_prod_has_the_policies_key_and_no_mandatory_violation():
    run = aip("preview", "--stack", "prod", "--format", "json")
    assert run.returncode == 0, run.stderr
    policies = json.loads(run.stdout)["policies"]
    assert policies["pack"] == PACK_NAME
    assert [v for v in policies["violations"] if v["enforcement"] == "mandatory"] == []
    assert set(policies) >= {"violations", "waived", "expiredWaivers"}


@pytest.mark.parametrize(("program", "policy"), [
    ("unencrypted_bucket", "aws-s3-bucket-sse-kms"),
    ("isvc_without_limits", "kubernetes-kserve-inferenceservice-resources"),
])
def test_non_compliant_programs_are_blocked_naming_the_policy(tmp_path, program, policy):
    run = aip("preview", "--stack", "prod", cwd=program_project(tmp_path, program))
    assert run.returncode == 1
    assert policy in run.stdout and policy in run.stderr
    assert "Traceback" not in run.stderr


def test_public_endpoint_without_allowlist_is_blocked_as_config(tmp_path):
    shutil.copytree(ROOT / "stacks", tmp_path / "stacks")
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    project["main"] = str(ROOT / "infra")
    (tmp_path / "Pulumi.yaml").write_text(yaml.safe_dump(project))
    stack = tmp_path / "stacks" / "Pulumi.prod.yaml"
    stack.write_text(stack.read_text().replace('    version: "1.34"',
                                               '    version: "1.34"\n    endpointPublicAccess: true'))
    run = aip("preview", "--stack", "prod", cwd=tmp_path)
    assert run.returncode == 2
    assert "ai-platform:cluster.publicAccessCidrs" in run.stderr


def test_sarif_is_a_sarif_2_1_0_log_with_a_rule_per_policy(tmp_path):
    run = aip("preview", "--stack", "prod", "--format", "sarif", cwd=program_project(tmp_path, "unencrypted_bucket"))
    assert run.returncode == 1
    log = json.loads(run.stdout)
    assert log["version"] == "2.1.0" and log["$schema"].endswith("sarif-2.1.0.json")
    driver = log["runs"][0]["tool"]["driver"]
    rule_ids = [r["id"] for r in driver["rules"]]
    assert driver["name"] == PACK_NAME and len(rule_ids) == len(ALL_POLICIES)
    results = log["runs"][0]["results"]
    assert results and all(r["ruleId"] == rule_ids[r["ruleIndex"]] for r in results)
    assert all(r["level"] in {"error", "warning", "note"} and r["message"]["text"] for r in results)
    assert all(r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "stacks/Pulumi.prod.yaml"
               for r in results)


def bucket_program_report(waiver: Waiver | None, today: datetime.date):
    result = run_program(lambda: __import__("runpy").run_path(str(FIXTURES / "unencrypted_bucket")),
                         project_name="ai-platform", stack="prod",
                         config=StackConfig(values={"aws:region": "us-east-1"}))
    config = json.loads((ROOT / "policies" / "config" / "prod.json").read_text())
    waivers = [waiver] if waiver else []
    return evaluate(result, ALL_POLICIES, pack=PACK_NAME, config=config,
                    waiver_for=lambda policy, urn: find_waiver(waivers, policy, urn, today))


def test_a_valid_waiver_suppresses_and_an_expired_one_does_not():
    today = datetime.date(2026, 11, 28)
    waiver = Waiver(policy="aws-s3-bucket-sse-kms", reason="migration", expires=datetime.date(2026, 12, 31),
                    approved_by="security@example.com", name="unencrypted")
    unwaived = bucket_program_report(None, today)
    assert "aws-s3-bucket-sse-kms" in {v.policy for v in unwaived.blocking}
    waived = bucket_program_report(waiver, today)
    assert "aws-s3-bucket-sse-kms" not in {v.policy for v in waived.violations}
    assert [v.policy for v, _ in waived.waived] == ["aws-s3-bucket-sse-kms"]
    expired = bucket_program_report(waiver, datetime.date(2027, 1, 1))
    assert "aws-s3-bucket-sse-kms" in {v.policy for v in expired.blocking}


def buckets_program() -> None:
    """Buckets as the platform's components register them: `protect`, `retain` and one inheriting protect."""
    import pulumi
    import pulumi_aws as aws

    store = pulumi.ComponentResource("ai-platform:storage:ModelStore", "store")
    aws.s3.Bucket("kept", opts=pulumi.ResourceOptions(parent=store, protect=True, retain_on_delete=True))
    aws.s3.Bucket("retained", opts=pulumi.ResourceOptions(parent=store, retain_on_delete=True))
    archive = pulumi.ComponentResource("ai-platform:observability:LogArchive", "archive",
                                       opts=pulumi.ResourceOptions(protect=True))
    aws.s3.Bucket("inherited", opts=pulumi.ResourceOptions(parent=archive))


def test_the_protect_option_reaches_resource_policies_through_the_gate():
    result = run_program(buckets_program, project_name="ai-platform", stack="prod",
                         config=StackConfig(values={"aws:region": "us-east-1"}))
    config = json.loads((ROOT / "policies" / "config" / "prod.json").read_text())
    report = evaluate(result, ALL_POLICIES, pack=PACK_NAME, config=config)
    flagged = [v for v in report.blocking if v.policy == "aws-s3-bucket-deletion-protection"]
    assert [v.urn.rsplit("::", 1)[1] for v in flagged] == ["retained"]
    assert "ai-platform:modelStore.deletionProtection" in flagged[0].message


def test_no_policy_skips_the_gate(tmp_path):
    run = aip("preview", "--stack", "prod", "--no-policy", "--format", "json",
              cwd=program_project(tmp_path, "unencrypted_bucket"))
    assert run.returncode == 0 and "policies" not in json.loads(run.stdout)


STACKS = sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in (ROOT / "stacks").glob("Pulumi.*.yaml"))


@pytest.mark.parametrize("stack", STACKS)
def test_every_shipped_stack_passes_the_gate_as_ci_runs_it(stack):
    run = aip("preview", "--stack", stack, "--format", "sarif")
    assert run.returncode == 0, run.stderr
    runs = json.loads(run.stdout)["runs"]
    assert [run["tool"]["driver"]["name"] for run in runs] == ["ai-platform-guardrails", "ai-platform-deploy-checks"]
    assert [r for run in runs for r in run["results"] if r["level"] == "error"] == []


def test_the_workflow_runs_make_test_and_the_gate_for_every_stack():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "policy-gate.yml").read_text())
    offline = [step.get("run") for step in workflow["jobs"]["offline"]["steps"]]
    assert "make test" in offline and "make gate" in offline
    assert "aip preview --stack $$stack --format sarif" in (ROOT / "Makefile").read_text()
    matrix = workflow["jobs"]["pulumi-preview"]["strategy"]["matrix"]["include"]
    assert sorted(m["stack"] for m in matrix) == STACKS
    for entry in matrix:
        assert (ROOT / "policies" / "config" / f"{entry['environment']}.json").is_file()


def aip_with_waivers(waivers: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`aip` in a real process whose pack reads ``waivers`` instead of the shipped policies/waivers.yaml."""
    code = ("import pathlib, sys; import policies.waivers as w; w.DEFAULT_PATH = pathlib.Path(sys.argv[1]); "
            "from infra.cli import main; raise SystemExit(main(sys.argv[2:]))")
    return subprocess.run([sys.executable, "-c", code, str(waivers), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


def test_a_refused_waiver_waives_nothing_and_is_reported(tmp_path):
    (tmp_path / "project").mkdir()
    project = program_project(tmp_path / "project", "unencrypted_bucket")
    today = datetime.date.today()
    entry = {"name": "unencrypted", "reason": "Fixture bucket of the policy gate test, never deployed anywhere.",
             "approvedBy": "security@example.com", "expires": str(today + datetime.timedelta(days=30))}
    # Every policy the bucket breaks is waived properly but two: a placeholder reason, and one day too long.
    waived = ["aws-s3-bucket-tls-only", "aws-s3-bucket-access-logging", "aws-s3-bucket-deletion-protection",
              "aws-s3-bucket-versioning"]
    too_long = str(today + datetime.timedelta(days=31))
    waivers = [{**entry, "policy": p} for p in waived] + [
        {**entry, "policy": "aws-s3-bucket-sse-kms", "reason": "tbd"},
        {**entry, "policy": "aws-s3-bucket-public-access-block", "expires": too_long}]
    waivers_file = tmp_path / "waivers.yaml"
    waivers_file.write_text(yaml.safe_dump(waivers))

    run = aip_with_waivers(waivers_file, "preview", "--stack", "prod", "--format", "json", cwd=project)
    assert run.returncode == 1, run.stderr
    report = json.loads(run.stdout)["policies"]
    assert sorted(w["policy"] for w in report["waived"]) == sorted(waived)
    blocking = sorted(v["policy"] for v in report["violations"] if v["enforcement"] == "mandatory")
    assert blocking == ["aws-s3-bucket-public-access-block", "aws-s3-bucket-sse-kms"]
    assert report["refusedWaivers"] == [
        {"policy": "aws-s3-bucket-sse-kms", "resource": "unencrypted",
         "reason": "reason 'tbd' is a placeholder, not a reason"},
        {"policy": "aws-s3-bucket-public-access-block", "resource": "unencrypted",
         "reason": f"expires {too_long} is 31 days after {today}; a waiver of a critical policy lasts at most "
                   f"30 days (until {today + datetime.timedelta(days=30)})"}]
    assert "2 waiver(s) refused" in run.stderr and "2 mandatory policy violation(s)" in run.stderr

    text = aip_with_waivers(waivers_file, "preview", "--stack", "prod", cwd=project)
    assert text.returncode == 1
    assert "refused waiver: aws-s3-bucket-sse-kms on unencrypted: reason 'tbd' is a placeholder" in text.stdout

    sarif = aip_with_waivers(waivers_file, "preview", "--stack", "prod", "--format", "sarif", cwd=project)
    assert sarif.returncode == 1
    run_log = json.loads(sarif.stdout)["runs"][0]
    (result,) = [r for r in run_log["results"] if r["ruleId"] == "aws-s3-bucket-sse-kms"]
    assert "suppressions" not in result and result["level"] == "error"
    assert result["properties"]["refusedWaivers"] == ["reason 'tbd' is a placeholder, not a reason"]
    notifications = run_log["invocations"][0]["toolConfigurationNotifications"]
    assert [n["message"]["text"].split(" refused:")[0] for n in notifications] == [
        "waiver of aws-s3-bucket-sse-kms on unencrypted", "waiver of aws-s3-bucket-public-access-block on unencrypted"]


@pytest.mark.parametrize(("text", "problem"), [
    ("- policy: aws-s3-bucket-sse-kms\n  name: unencrypted: yes\n",
     "line 2, column 20: not valid YAML: mapping values are not allowed here"),
    ("- policy: aws-s3-bucket-sse-kms\n  name: unencrypted\n  reason: Fixture bucket, never deployed anywhere.\n"
     "  expires: 2026-01-01\n  approvedBy: security@example.com\n  reason: tbd\n",
     "line 6: duplicate key 'reason' (first on line 3)"),
])
def test_a_waivers_file_yaml_cannot_read_stops_the_gate_naming_file_and_line(tmp_path, text, problem):
    (tmp_path / "project").mkdir()
    project = program_project(tmp_path / "project", "unencrypted_bucket")
    waivers_file = tmp_path / "waivers.yaml"
    waivers_file.write_text(text)
    run = aip_with_waivers(waivers_file, "preview", "--stack", "prod", cwd=project)
    assert run.returncode == 2
    assert f"error: policy gate: {waivers_file}: {problem}" in run.stderr
    assert "Traceback" not in run.stderr
