"""`aip preview` as a user runs it: a real process, real exit codes, nothing but the message on errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, aip


def test_json_lists_cluster_gpu_pool_key_and_bucket():
    run = aip("preview", "--stack", "dev", "--format", "json")
    assert run.returncode == 0, run.stderr
    document = json.loads(run.stdout)
    assert (document["project"], document["stack"]) == ("ai-platform", "dev")
    types = [r["type"] for r in document["resources"]]
    for expected in ("aws:eks/cluster:Cluster", "aws:eks/nodeGroup:NodeGroup", "aws:kms/key:Key",
                     "aws:s3/bucket:Bucket", "aws:s3/bucketVersioning:BucketVersioning",
                     "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
                     "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
                     "kubernetes:helm.sh/v3:Release"):
        assert expected in types
    resource = document["resources"][0]
    assert {"urn", "type", "name", "parent", "inputs"} <= set(resource)
    # dev's GPU pool is a Karpenter NodePool.
    gpu = [r for r in document["resources"] if r["type"] == "kubernetes:karpenter.sh/v1:NodePool"]
    assert gpu and {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"} in gpu[0]["inputs"]["spec"][
        "template"]["spec"]["taints"]
    release = next(r for r in document["resources"] if r["type"] == "kubernetes:helm.sh/v3:Release"
                   and r["inputs"]["chart"] == "nvidia-device-plugin")
    assert {"chart", "version", "repositoryOpts", "namespace", "values"} <= set(release["inputs"])
    assert document["outputs"]["clusterName"] == "aip-dev"


def test_manifests_print_the_team_namespace():
    run = aip("preview", "--stack", "dev", "--format", "manifests")
    assert run.returncode == 0, run.stderr
    objects = list(yaml.safe_load_all(run.stdout))
    namespace = next(o for o in objects if o["kind"] == "Namespace" and o["metadata"]["name"] == "vision")
    assert list(namespace)[:3] == ["apiVersion", "kind", "metadata"]


def test_text_summary_groups_by_component_and_shows_outputs():
    run = aip("preview", "--stack", "dev")
    assert run.returncode == 0, run.stderr
    assert "ai-platform / dev" in run.stdout and "aip-dev-cluster" in run.stdout and "Stack outputs" in run.stdout


def test_bad_stack_config_exits_2_with_every_problem_and_no_traceback(scratch_project: Path):
    stack = scratch_project / "stacks" / "Pulumi.dev.yaml"
    data = yaml.safe_load(stack.read_text())
    data["config"]["ai-platform:gpuPools"][0]["instanceTypes"] = ["m5.large"]
    data["config"]["ai-platform:cluster"]["endpointPublicAccess"] = True
    data["config"]["ai-platform:clustr"] = {}
    stack.write_text(yaml.safe_dump(data))
    run = aip("preview", "--stack", "dev", "--format", "json", cwd=scratch_project)
    assert run.returncode == 2
    assert run.stdout == ""
    assert "Traceback" not in run.stderr
    assert "stacks/Pulumi.dev.yaml: 3 configuration problems:" in run.stderr
    for fragment in ('ai-platform:gpuPools[0].instanceTypes[0] = "m5.large": is not a supported GPU instance type',
                     "ai-platform:cluster.publicAccessCidrs = (not set): must list at least one CIDR",
                     "ai-platform:clustr = {}: unknown key (did you mean cluster?)"):
        assert fragment in run.stderr


def test_unknown_stack_exits_2_and_lists_the_stacks():
    run = aip("preview", "--stack", "nope")
    assert run.returncode == 2
    assert "no stack 'nope'" in run.stderr and "vision-dev" in run.stderr and "Traceback" not in run.stderr


def test_stack_file_that_is_not_yaml_exits_2(scratch_project: Path):
    (scratch_project / "stacks" / "Pulumi.broken.yaml").write_text("config: [unclosed\n")
    run = aip("preview", "--stack", "broken", cwd=scratch_project)
    assert run.returncode == 2 and "not valid YAML" in run.stderr and "Traceback" not in run.stderr


def test_missing_subcommand_is_a_usage_error():
    assert aip().returncode == 2


def test_invalid_config_registers_nothing(scratch_project: Path):
    from infra.config import ConfigError
    from infra.preview import ProgramError, Project, run_preview

    stack = scratch_project / "stacks" / "Pulumi.dev.yaml"
    stack.write_text(stack.read_text().replace("availabilityZones: 2", "availabilityZones: 9"))
    with pytest.raises(ProgramError) as caught:
        run_preview("dev", Project.load(scratch_project))
    assert isinstance(caught.value.cause, ConfigError)
    assert caught.value.resources == []
    assert "ai-platform:network.availabilityZones = 9: must be at most 6" in str(caught.value.cause)


@pytest.mark.parametrize(("content", "message"), [
    (b"config:\n  ai-platform:costCenter: 2024-01-01\n", "ai-platform:environment = (not set)"),
    (b"config:\n  aws:region: \xff\xfe\n", "not UTF-8 text"),
    (b"config: oops\n", "expected a mapping with a 'config:' mapping"),
], ids=["yaml-date", "not-utf8", "config-not-a-mapping"])
def test_malformed_stack_files_exit_2_without_traceback(scratch_project: Path, content: bytes, message: str):
    (scratch_project / "stacks" / "Pulumi.odd.yaml").write_bytes(content)
    run = aip("preview", "--stack", "odd", cwd=scratch_project)
    assert run.returncode == 2, run.stderr
    assert message in run.stderr and "Traceback" not in run.stderr


def test_json_of_a_team_stack_lists_its_inference_services_and_uploaded_archives():
    run = aip("preview", "--stack", "vision-dev", "--format", "json")
    assert run.returncode == 0, run.stderr
    types = [r["type"] for r in json.loads(run.stdout)["resources"]]
    assert types.count("kubernetes:serving.kserve.io/v1beta1:InferenceService") == 1
    assert types.count("aws:s3/bucketObjectv2:BucketObjectv2") == 2


def test_gpu_pool_of_another_team_is_a_config_error(scratch_project: Path):
    stack = scratch_project / "stacks" / "Pulumi.vision-prod.yaml"
    stack.write_text(stack.read_text().replace("gpuPool: inference-l40s", "gpuPool: search-h100"))
    run = aip("preview", "--stack", "vision-prod", cwd=scratch_project)
    assert run.returncode == 2
    assert run.stderr.strip().endswith('ai-platform:models[0].gpuPool = "search-h100": is not a GPU pool of '
                                       "acme/ai-platform/prod this team may use; allowed: inference-l40s")
    assert "Traceback" not in run.stderr and "Task was destroyed" not in run.stderr


def test_json_reports_the_deploy_checks():
    run = aip("preview", "--stack", "dev", "--format", "json")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["deployChecks"] == []


def test_no_deploy_checks_leaves_them_out():
    run = aip("preview", "--stack", "dev", "--format", "json", "--no-policy", "--no-deploy-checks")
    assert run.returncode == 0, run.stderr
    assert "deployChecks" not in json.loads(run.stdout)


@pytest.fixture
def stray_alias_project(scratch_project: Path) -> Path:
    """The real program plus a KMS alias retained on delete under a fixed name, which the recreate check finds."""
    program = scratch_project / "program"
    program.mkdir()
    (program / "__main__.py").write_text(
        "import runpy\n\nimport pulumi\nimport pulumi_aws as aws\n\n"
        f"runpy.run_path({str(ROOT / 'infra')!r}, run_name='__main__')\n"
        "aws.kms.Alias('aip-stray', name='alias/aip-stray', target_key_id='00000000-0000-0000-0000-000000000000',\n"
        "              opts=pulumi.ResourceOptions(retain_on_delete=True, delete_before_replace=True))\n")
    project = yaml.safe_load((scratch_project / "Pulumi.yaml").read_text())
    project["main"] = str(program)
    (scratch_project / "Pulumi.yaml").write_text(yaml.safe_dump(project))
    return scratch_project


STRAY_ALIAS = "urn:pulumi:dev::ai-platform::pulumi:pulumi:Stack$aws:kms/alias:Alias::aip-stray"


def test_deploy_check_findings_fail_the_preview(stray_alias_project: Path):
    run = aip("preview", "--stack", "dev", "--format", "json", "--no-policy", cwd=stray_alias_project)
    assert run.returncode == 1, run.stderr
    assert json.loads(run.stdout)["deployChecks"] == [{
        "check": "recreate", "subject": STRAY_ALIAS,
        "message": "Alias is retained on delete with the fixed name 'alias/aip-stray': it outlives `pulumi destroy` "
                   "and the next `pulumi up` fails to create it again; drop retainOnDelete (or protect it)"}]
    assert run.stderr.strip().endswith("1 deploy check finding(s): recreate")

    text = aip("preview", "--stack", "dev", "--no-policy", cwd=stray_alias_project)
    assert text.returncode == 1
    assert "Deploy checks: 1 finding(s)" in text.stdout
    assert f"[recreate] {STRAY_ALIAS}: Alias is retained" in text.stdout

    skipped = aip("preview", "--stack", "dev", "--no-policy", "--no-deploy-checks", cwd=stray_alias_project)
    assert skipped.returncode == 0, skipped.stderr
    assert "Deploy checks" not in skipped.stdout


def test_two_resources_with_one_urn_fail_the_preview_as_the_engine_would(tmp_path: Path):
    program = tmp_path / "program"
    program.mkdir()
    (program / "__main__.py").write_text("import pulumi_aws as aws\n\naws.s3.Bucket('logs')\naws.s3.Bucket('logs')\n")
    (tmp_path / "Pulumi.yaml").write_text(yaml.safe_dump({"name": "ai-platform", "runtime": "python",
                                                          "main": str(program), "stackConfigDir": "stacks"}))
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "Pulumi.dev.yaml").write_text(yaml.safe_dump({"config": {"aws:region": "us-east-1"}}))
    run = aip("preview", "--stack", "dev", "--no-policy", "--no-package", cwd=tmp_path)
    assert run.returncode == 1
    assert "Duplicate resource URN" in run.stderr



def test_sarif_reports_each_deploy_check_finding_as_an_error():
    from infra.graph_checks import Finding
    from infra.preview.policy_render import deploy_checks_run

    finding = Finding("recreate", "urn:pulumi:dev::ai-platform::aws:kms/alias:Alias::a", "is retained on delete")
    run = deploy_checks_run([finding], "stacks/Pulumi.dev.yaml")
    assert [rule["id"] for rule in run["tool"]["driver"]["rules"]] == [
        "reachability", "ordering", "identity", "recreate", "chart-values", "custom-resources"]
    [result] = run["results"]
    assert (result["ruleId"], result["ruleIndex"], result["level"]) == ("recreate", 3, "error")
    assert result["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] == finding.subject
    assert result["message"]["text"] == "is retained on delete"


def test_a_team_stack_on_a_misconfigured_platform_is_a_config_error(scratch_project: Path):
    platform = scratch_project / "stacks" / "Pulumi.prod.yaml"
    platform.write_text(platform.read_text().replace("natGateways: perAz", "natGateways: single"))
    run = aip("preview", "--stack", "vision-prod", "--no-package", cwd=scratch_project)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        "error: stack reference 'acme/ai-platform/prod' cannot be read: stacks/Pulumi.prod.yaml: 1 configuration "
        "problem:",
        '  - ai-platform:network.natGateways = "single": must be perAz in prod (one NAT gateway per AZ)']


@pytest.mark.parametrize(("key", "again"), [
    ("ai-platform:cluster", '  ai-platform:cluster:\n    version: "1.34"\n'),
    ("ai-platform:environment", "  ai-platform:environment: prod\n")])
def test_a_key_given_twice_in_a_stack_file_is_refused_with_its_line(scratch_project: Path, key: str, again: str):
    stack = scratch_project / "stacks" / "Pulumi.dev.yaml"
    lines = stack.read_text().splitlines()
    first = next(number for number, line in enumerate(lines, 1) if line.startswith(f"  {key}:"))
    stack.write_text(stack.read_text() + again)
    run = aip("preview", "--stack", "dev", "--no-package", cwd=scratch_project)
    assert run.returncode == 2
    assert f"key '{key}' appears twice in one mapping (first on line {first})" in run.stderr
    assert f"line {len(lines) + 1}" in run.stderr and "Traceback" not in run.stderr


def test_a_nested_key_given_twice_is_refused_too(scratch_project: Path):
    stack = scratch_project / "stacks" / "Pulumi.dev.yaml"
    stack.write_text(stack.read_text().replace("      maxSize: 2\n", "      maxSize: 2\n      maxSize: 20\n", 1))
    run = aip("preview", "--stack", "dev", "--no-package", cwd=scratch_project)
    assert run.returncode == 2 and "key 'maxSize' appears twice in one mapping" in run.stderr


def test_a_key_given_with_and_without_its_namespace_is_refused(scratch_project: Path):
    from infra.preview import Project, ProjectError

    stack = scratch_project / "stacks" / "Pulumi.vision-dev.yaml"
    stack.write_text(stack.read_text() + "  models: []\n")
    with pytest.raises(ProjectError, match="config key ai-platform:models is set twice, as 'ai-platform:models' and "
                                           "'models'"):
        Project.load(scratch_project).stack_config("vision-dev")


def test_yaml_merge_keys_merge_and_keys_beside_them_override(scratch_project: Path):
    from infra.preview import Project

    stack = scratch_project / "stacks" / "Pulumi.dev.yaml"
    stack.write_text(stack.read_text() + "  ai-platform:observability:\n    <<: {grafana: {}, retentionDays: 7}\n"
                                         "    retentionDays: 9\n")
    values = Project.load(scratch_project).stack_config("dev").values
    assert json.loads(values["ai-platform:observability"]) == {"grafana": {}, "retentionDays": 9}


@pytest.mark.parametrize("stack", ["../dev", "", "dev\n", "stacks/Pulumi.dev.yaml", "dev/../dev"])
def test_preview_of_a_path_or_other_non_stack_name_is_refused(stack: str):
    run = aip("preview", "--stack", stack, "--no-package")
    assert run.returncode == 2
    assert "is not a stack name (letters, digits, '-', '_' and '.', as in vision-prod)" in run.stderr
    assert "Traceback" not in run.stderr
