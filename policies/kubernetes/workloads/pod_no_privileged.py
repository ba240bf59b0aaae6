"""kubernetes-core-pod-no-privileged: no container runs privileged or may escalate privileges."""

from __future__ import annotations

from pulumi_policy import ReportViolation, ResourceValidationArgs, ResourceValidationPolicy, Severity

from policies.frameworks import HIPAA, ISO27001, SOC2, cis_eks
from policies.kubernetes.workloads.pods import all_containers, resource_label
from policies.props import get, truthy


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    for path, container in all_containers(args.resource_type, args.props):
        if truthy(get(container, "securityContext", "privileged")):
            report_violation(f"{resource_label(args.resource_type, args.name)} container at {path} is privileged.")
        if truthy(get(container, "securityContext", "allowPrivilegeEscalation")):
            report_violation(f"{resource_label(args.resource_type, args.name)} container at {path} sets "
                             "allowPrivilegeEscalation true.")


kubernetes_core_pod_no_privileged = ResourceValidationPolicy(
    name="kubernetes-core-pod-no-privileged",
    description="Containers of any workload (InferenceService and ServingRuntime included) are not privileged "
                "and do not allow privilege escalation.",
    validate=validate,
    severity=Severity.CRITICAL,
    framework=cis_eks("4.2.1"),
    tags=["kubernetes", "pod-security", SOC2, ISO27001, HIPAA],
    remediation_steps="Remove securityContext.privileged and set allowPrivilegeEscalation: false.",
    url="https://kubernetes.io/docs/concepts/security/pod-security-standards/",
)
