"""kubernetes-helm-grafana-no-anonymous-access: Grafana does not let anonymous users in."""

from __future__ import annotations

from pulumi_policy import ReportViolation, ResourceValidationArgs, ResourceValidationPolicy, Severity

from policies.frameworks import CIS_EKS, ISO27001, SOC2, platform_baseline
from policies.kubernetes.helm.grafana import grafana_values
from policies.props import get, truthy


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    values = grafana_values(args.resource_type, args.props)
    if values is None:
        return
    if truthy(get(values, "grafana.ini", "auth.anonymous", "enabled")):
        report_violation(f"Grafana release '{args.name}' enables anonymous access (grafana.ini auth.anonymous).")


kubernetes_helm_grafana_no_anonymous_access = ResourceValidationPolicy(
    name="kubernetes-helm-grafana-no-anonymous-access",
    description="Grafana (chart grafana or kube-prometheus-stack) does not enable anonymous access.",
    validate=validate,
    severity=Severity.HIGH,
    framework=platform_baseline("authentication"),
    tags=["kubernetes", "grafana", "authentication", CIS_EKS, SOC2, ISO27001],
    remediation_steps="Remove grafana.ini auth.anonymous.enabled (or set it false) and sign in through SSO.",
    url="https://grafana.com/docs/grafana/latest/setup-grafana/configure-security/configure-authentication/",
)
