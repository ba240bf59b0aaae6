"""The in-cluster guardrails' CEL, evaluated against pods the way the API server evaluates it."""

from __future__ import annotations

import copy
import re
from typing import Any

import celpy
import pulumi_kubernetes as k8s
import pytest

from infra.components.admission_policies import (
    POLICY_NAMES,
    AdmissionPolicies,
    AdmissionPoliciesArgs,
    binding_spec,
    policy_metadata,
    policy_validations,
)
from policies.images import approved_patterns

REGISTRIES = ("docker.io/pytorch/", "docker.io/kserve/")
ACCOUNT = "123456789012"
COMPLIANT = {"spec": {
    "initContainers": [{"name": "storage-initializer", "image": "kserve/storage-initializer:v0.20.0",
                        "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}],
    "containers": [{"name": "kserve-container", "image": "docker.io/pytorch/torchserve-kfs:0.12.0",
                    "resources": {"limits": {"cpu": "1", "memory": "2Gi"}},
                    "securityContext": {"privileged": False, "capabilities": {"drop": ["ALL"]}}},
                   {"name": "team", "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/vision/digits:1.0",
                    "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}],
    "volumes": [{"name": "models", "emptyDir": {}}]}}


UNAPPROVED = ("images must come from an approved registry (docker.io/pytorch/, docker.io/kserve/, "
              "123456789012.dkr.ecr.<region>.amazonaws.com/)")


def failures(pod: dict[str, Any]) -> list[str]:
    env = celpy.Environment()
    found = []
    for checks in policy_validations(REGISTRIES, (ACCOUNT,)).values():
        for check in checks:
            program = env.program(env.compile(check["expression"]))
            if not program.evaluate({"object": celpy.json_to_cel(pod)}):
                found.append(check["message"])
    return found


def mutated(path: str, value: Any) -> dict[str, Any]:
    pod = copy.deepcopy(COMPLIANT)
    *parents, last = path.split(".")
    node: Any = pod
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    node[int(last) if last.isdigit() else last] = value
    return pod


def test_a_compliant_pod_is_admitted():
    assert failures(COMPLIANT) == []


@pytest.mark.parametrize(("path", "value", "message"), [
    ("spec.containers.0.image", "evil.example.com/miner:1", UNAPPROVED),
    ("spec.initContainers.0.image", "quay.io/x/y:1", UNAPPROVED),
    ("spec.containers.0.image", "docker.io/pytorchevil/miner:1", UNAPPROVED),
    ("spec.containers.1.image", "210987654321.dkr.ecr.us-east-1.amazonaws.com/vision/digits:1.0", UNAPPROVED),
    ("spec.containers.1.resources", {}, "every container must set cpu and memory limits"),
    ("spec.containers.0.resources.limits", {"cpu": "1"}, "every container must set cpu and memory limits"),
    ("spec.containers.0.securityContext.privileged", True, "containers may not be privileged or add capabilities"),
    ("spec.containers.0.securityContext.capabilities", {"add": ["NET_ADMIN"]},
     "containers may not be privileged or add capabilities"),
    ("spec.volumes.0", {"name": "host", "hostPath": {"path": "/"}}, "hostPath volumes are not allowed"),
    ("spec.hostNetwork", True, "host namespaces (network, PID, IPC) are not allowed"),
])
def test_each_violation_is_denied_with_its_message(path, value, message):
    assert failures(mutated(path, value)) == [message]


def test_the_component_creates_every_policy():
    assert tuple(policy_validations(REGISTRIES, (ACCOUNT,))) == POLICY_NAMES


def test_bindings_deny_in_team_namespaces_only():
    binding = binding_spec("aip-resource-limits")
    assert binding["validationActions"] == ["Deny"]
    assert binding["matchResources"]["namespaceSelector"]["matchExpressions"][1] == {
        "key": "ai-platform.io/team", "operator": "NotIn", "values": ["platform"]}


VAP = "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicy"


def test_the_registries_policy_records_the_prefixes_it_admits(run_component):
    def build():
        AdmissionPolicies("adm", AdmissionPoliciesArgs(approved_registries=("pytorch/", "docker.io/kserve/"),
                                                       account_id=ACCOUNT,
                                                       provider=k8s.Provider("k8s", kubeconfig="{}")))

    found = {r.inputs["metadata"]["name"]: r.inputs["metadata"] for r in run_component(build).of_type(VAP)}
    assert found["aip-approved-registries"]["annotations"] == {
        "ai-platform.io/approved-registries": "docker.io/pytorch/,docker.io/kserve/"}
    assert "annotations" not in found["aip-resource-limits"]


def test_the_annotation_names_exactly_the_prefixes_the_cel_matches():
    # The pack judges the annotation; it must say what the CEL enforces, the account's own ECR aside.
    registries = ("pytorch/", "index.docker.io/kserve/", "ghcr.io/acme/models/")
    annotations = policy_metadata("aip-approved-registries", registries)["annotations"]
    recorded = annotations["ai-platform.io/approved-registries"]
    expression = policy_validations(registries, (ACCOUNT,))["aip-approved-registries"][0]["expression"]
    matched = re.findall(r"matches\('([^']*)'\)", expression)
    assert matched == list(approved_patterns(recorded.split(","), (ACCOUNT,)))
