"""In-cluster guardrails for what Pulumi does not create: ValidatingAdmissionPolicies on team namespaces.

Kubernetes-native (admissionregistration.k8s.io/v1, CEL), so no extra controller runs. They judge
every pod in a team namespace, whoever creates it: KServe's Deployments, a kubectl user, a CI job.
https://kubernetes.io/docs/reference/access-authn-authz/validating-admission-policy/
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from policies.images import (
    APPROVED_REGISTRIES_ANNOTATION,
    approved_patterns,
    describe_approved,
    prefixes_annotation,
)

TEAM_LABEL = "ai-platform.io/team"
_ALL_CONTAINERS = ("object.spec.containers + (has(object.spec.initContainers) ? object.spec.initContainers : [])"
                   " + (has(object.spec.ephemeralContainers) ? object.spec.ephemeralContainers : [])")


POLICY_NAMES = ("aip-approved-registries", "aip-resource-limits", "aip-no-privileged-pods")


def _cel_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def policy_validations(approved_registries: tuple[str, ...],
                       accounts: tuple[str, ...]) -> dict[str, list[dict[str, str]]]:
    """Each policy's CEL checks with the message a rejected user sees.

    Images are matched with the policy pack's own patterns (policies/images.py): the approved prefixes in
    every spelling the runtime resolves to them, and the ECR of ``accounts`` (the stack's own) only.
    """
    # One constant regex per call, so the API server compiles and checks each when the policy is created.
    matches = " || ".join(f"c.image.matches({_cel_string(p)})"
                          for p in approved_patterns(approved_registries, accounts)) or "false"
    return {
        "aip-approved-registries": [{
            "expression": f"({_ALL_CONTAINERS}).all(c, {matches})",
            "message": "images must come from an approved registry "
                       f"({describe_approved(approved_registries, accounts)})"}],
        "aip-resource-limits": [{
            "expression": "object.spec.containers.all(c, has(c.resources) && has(c.resources.limits) && "
                          "'cpu' in c.resources.limits && 'memory' in c.resources.limits)",
            "message": "every container must set cpu and memory limits"}],
        "aip-no-privileged-pods": [
            {"expression": f"({_ALL_CONTAINERS}).all(c, !has(c.securityContext) || "
                           "((!has(c.securityContext.privileged) || !c.securityContext.privileged) && "
                           "(!has(c.securityContext.capabilities) || !has(c.securityContext.capabilities.add) || "
                           "c.securityContext.capabilities.add.size() == 0)))",
             "message": "containers may not be privileged or add capabilities"},
            {"expression": "!has(object.spec.volumes) || object.spec.volumes.all(v, !has(v.hostPath))",
             "message": "hostPath volumes are not allowed"},
            {"expression": "!(has(object.spec.hostNetwork) && object.spec.hostNetwork) && "
                           "!(has(object.spec.hostPID) && object.spec.hostPID) && "
                           "!(has(object.spec.hostIPC) && object.spec.hostIPC)",
             "message": "host namespaces (network, PID, IPC) are not allowed"},
        ],
    }


def policy_metadata(policy: str, approved_registries: tuple[str, ...]) -> dict[str, Any]:
    """The policy's name; the registries policy also records the prefixes it admits, for the policy pack to
    compare with its own approvedRegistries (kubernetes-admission-approved-registries)."""
    if policy != "aip-approved-registries":
        return {"name": policy}
    return {"name": policy, "annotations": {APPROVED_REGISTRIES_ANNOTATION: prefixes_annotation(approved_registries)}}


def policy_spec(validations: list[dict[str, str]]) -> dict[str, Any]:
    return {"failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
                                                    "operations": ["CREATE", "UPDATE"], "resources": ["pods"]}]},
            "validations": validations}


def binding_spec(policy: str) -> dict[str, Any]:
    """Deny in every team namespace (labelled with a team other than the platform)."""
    return {"policyName": policy, "validationActions": ["Deny"],
            "matchResources": {"namespaceSelector": {"matchExpressions": [
                {"key": TEAM_LABEL, "operator": "Exists"},
                {"key": TEAM_LABEL, "operator": "NotIn", "values": ["platform"]}]}}}


@dataclass(frozen=True)
class AdmissionPoliciesArgs:
    """Args of :class:`AdmissionPolicies`.

    Attributes:
        approved_registries: Image prefixes team pods may pull from (normalised, as the config holds them).
        account_id: The stack's AWS account, whose ECR team pods may always pull from.
        provider: Kubernetes provider of the cluster.
    """

    approved_registries: tuple[str, ...]
    account_id: pulumi.Input[str]
    provider: k8s.Provider


class AdmissionPolicies(pulumi.ComponentResource):
    """Approved registries, resource limits and no privileged pods, enforced in team namespaces."""

    def __init__(self, name: str, args: AdmissionPoliciesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-platform:guardrails:AdmissionPolicies", name, None, opts)
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=args.provider)
        validations = pulumi.Output.from_input(args.account_id).apply(
            lambda account: policy_validations(args.approved_registries, (account,)))
        for policy in POLICY_NAMES:
            created = k8s.admissionregistration.v1.ValidatingAdmissionPolicy(
                f"{name}-{policy}", metadata=policy_metadata(policy, args.approved_registries),
                spec=validations.apply(lambda found, p=policy: policy_spec(found[p])), opts=k8s_opts)
            k8s.admissionregistration.v1.ValidatingAdmissionPolicyBinding(
                f"{name}-{policy}-binding", metadata={"name": policy}, spec=binding_spec(policy),
                opts=pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(depends_on=[created])))
        self.register_outputs({})
