"""Valid but less safe stack files, previewed through `aip preview` as CI runs the gate: each is caught."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.conftest import aip

pytestmark = pytest.mark.integration


def gate(project: Path, stack: str, edit) -> tuple[int, dict[str, list[str]]]:
    """Edit a copy of a shipped stack file, preview it; the exit code and the mandatory violations by policy."""
    path = project / "stacks" / f"Pulumi.{stack}.yaml"
    data = yaml.safe_load(path.read_text())
    edit(data["config"])
    path.write_text(yaml.safe_dump(data))
    run = aip("preview", "--stack", stack, "--format", "json", "--no-package", "--no-deploy-checks", cwd=project)
    assert run.stdout, run.stderr
    found: dict[str, list[str]] = {}
    for violation in json.loads(run.stdout)["policies"]["violations"]:
        if violation["enforcement"] == "mandatory":
            found.setdefault(violation["policy"], []).append(violation["message"])
    return run.returncode, found


def spot_gpus(config: dict) -> None:
    # The first pool is a Karpenter NodePool, the second a managed node group: spot is caught on both.
    config["ai-platform:gpuPools"][0]["capacityTypes"] = ["ON_DEMAND", "SPOT"]
    config["ai-platform:gpuPools"][1]["capacityType"] = "SPOT"


def existing_vpc(config: dict) -> None:
    config["ai-platform:network"] = {"existingVpcId": "vpc-0123456789abcdef0",
                                     "existingPrivateSubnetIds": ["subnet-0123456789abcdef0",
                                                                  "subnet-0123456789abcdef1"]}


def test_spot_gpu_capacity_in_prod_fails_the_gate(scratch_project: Path):
    code, found = gate(scratch_project, "prod", spot_gpus)
    assert code == 1
    assert found == {
        "aws-eks-nodegroup-gpu-on-demand": [
            "GPU node group 'aip-prod-gpu-search-h100-nodes' uses SPOT capacity: EC2 may reclaim its nodes with two "
            "minutes' notice, taking serving replicas down; use ON_DEMAND here."],
        "kubernetes-karpenter-nodepool-spot": [
            "NodePool 'aip-prod-gpu-inference-l40s-node-pool' admits spot capacity (karpenter.sh/capacity-type In "
            "on-demand, spot): EC2 may reclaim its nodes with two minutes' notice, taking serving replicas down; "
            "require on-demand (or reserved) here."]}


def test_an_existing_vpc_in_prod_is_flagged_for_flow_logs_and_nat(scratch_project: Path):
    code, found = gate(scratch_project, "prod", existing_vpc)
    assert code == 1
    assert sorted(found) == ["aws-ec2-vpc-flow-logs", "aws-ec2-vpc-nat-per-az"]


def test_eight_gpu_instances_count_as_eight_gpus_against_the_budget(scratch_project: Path):
    def bigger(config: dict) -> None:
        config["ai-platform:gpuPools"][0]["instanceTypes"] = ["g6e.48xlarge"]

    code, found = gate(scratch_project, "prod", bigger)
    assert code == 1
    assert found == {"aws-eks-nodegroup-gpu-budget": [
        "GPU pools can scale to 80 GPUs (aip-prod-gpu-inference-l40s-node-pool=64, "
        "aip-prod-gpu-search-h100-nodes=16); the budget is 32 GPUs."]}


def test_a_cluster_allowlist_wider_than_the_packs_fails_the_gate(scratch_project: Path):
    def widen(config: dict) -> None:
        cluster = config["ai-platform:cluster"]
        shipped = cluster.get("approvedRegistries", ["docker.io/pytorch/", "docker.io/kserve/"])
        cluster["approvedRegistries"] = [*shipped, "docker.io/randomuser/"]

    code, found = gate(scratch_project, "prod", widen)
    assert code == 1
    assert found == {"kubernetes-admission-approved-registries": [
        "ValidatingAdmissionPolicy 'aip-approved-registries' admits team images under 'docker.io/randomuser/', which "
        "the pack's approvedRegistries (docker.io/pytorch/, docker.io/kserve/) do not cover; remove it from "
        "cluster.approvedRegistries or have it reviewed into the pack's approvedRegistries."]}
