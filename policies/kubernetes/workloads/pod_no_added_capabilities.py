"""kubernetes-core-pod-no-added-capabilities: no container adds Linux capabilities."""

from __future__ import annotations

from pulumi_policy import ReportViolation, ResourceValidationArgs, ResourceValidationPolicy, Severity

from policies.frameworks import ISO27001, SOC2, cis_eks
from policies.kubernetes.workloads.pods import all_containers, resource_label
from policies.props import get, items

# The one capability the restricted Pod Security Standard still allows to add.
ALLOWED = {"NET_BIND_SERVICE"}


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    for path, container in all_containers(args.resource_type, args.props):
        added = [str(c) for c in items(get(container, "securityContext", "capabilities", "add"))]
        extra = [c for c in added if c not in ALLOWED]
        if extra:
            report_violation(f"{resource_label(args.resource_type, args.name)} container at {path} adds "
                             f"capabilities {', '.join(extra)}.")


kubernetes_core_pod_no_added_capabilities = ResourceValidationPolicy(
    name="kubernetes-core-pod-no-added-capabilities",
    description="Containers of any workload add no Linux capabilities beyond NET_BIND_SERVICE.",
    validate=validate,
    severity=Severity.HIGH,
    framework=cis_eks("4.2.8"),
    tags=["kubernetes", "pod-security", SOC2, ISO27001],
    remediation_steps="Remove securityContext.capabilities.add and keep capabilities.drop: ['ALL'].",
    url="https://kubernetes.io/docs/concepts/security/pod-security-standards/",
)
