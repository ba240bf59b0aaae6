"""kubernetes-core-namespace-pod-security-restricted: namespaces enforce the restricted Pod Security Standard."""

from __future__ import annotations

from pulumi_policy import ReportViolation, ResourceValidationArgs, ResourceValidationPolicy, Severity

from policies.frameworks import ISO27001, SOC2, cis_eks
from policies.props import describe, get

NAMESPACE = "kubernetes:core/v1:Namespace"
ENFORCE = "pod-security.kubernetes.io/enforce"


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != NAMESPACE:
        return
    level = get(args.props, "metadata", "labels", ENFORCE)
    if level != "restricted":
        name = get(args.props, "metadata", "name", default=args.name)
        shown = repr(level) if isinstance(level, str) else describe(level)
        report_violation(f"Namespace '{name}' has {ENFORCE}={shown}; it must be 'restricted'.")


kubernetes_core_namespace_pod_security_restricted = ResourceValidationPolicy(
    name="kubernetes-core-namespace-pod-security-restricted",
    description="Namespaces carry the label pod-security.kubernetes.io/enforce=restricted.",
    validate=validate,
    severity=Severity.HIGH,
    framework=cis_eks("4.2"),
    tags=["kubernetes", "pod-security", SOC2, ISO27001],
    remediation_steps="Label the namespace pod-security.kubernetes.io/enforce: restricted "
                      "(infra/components/team_workspace.py).",
    url="https://kubernetes.io/docs/concepts/security/pod-security-admission/",
)
