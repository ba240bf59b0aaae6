"""kubernetes-helm-grafana-no-default-password: Grafana's admin password is not a well-known default."""

from __future__ import annotations

from pulumi_policy import ReportViolation, ResourceValidationArgs, ResourceValidationPolicy, Severity

from policies.frameworks import CIS_EKS, ISO27001, SOC2, platform_baseline
from policies.kubernetes.helm.grafana import grafana_values
from policies.props import get

DEFAULT_PASSWORDS = {"prom-operator", "admin", "password", ""}


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    values = grafana_values(args.resource_type, args.props)
    if values is None:
        return
    # An existing secret holds the credentials; the chart then ignores adminPassword.
    if get(values, "admin", "existingSecret"):
        return
    password = get(values, "adminPassword")
    if password is None:
        report_violation(f"Grafana release '{args.name}' sets neither adminPassword nor admin.existingSecret; "
                         "the chart default password applies.")
    elif str(password) in DEFAULT_PASSWORDS:
        report_violation(f"Grafana release '{args.name}' uses the default admin password '{password}'.")


kubernetes_helm_grafana_no_default_password = ResourceValidationPolicy(
    name="kubernetes-helm-grafana-no-default-password",
    description="Grafana's admin credentials come from a secret, never a default password such as prom-operator.",
    validate=validate,
    severity=Severity.CRITICAL,
    framework=platform_baseline("authentication"),
    tags=["kubernetes", "grafana", "authentication", CIS_EKS, SOC2, ISO27001],
    remediation_steps="Set admin.existingSecret to a Secret created from a generated password (e.g. "
                      "pulumi_random.RandomPassword) instead of adminPassword.",
    url="https://github.com/grafana/helm-charts/tree/main/charts/grafana#configuration",
)
