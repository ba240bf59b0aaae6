"""kubernetes-networking-namespace-default-deny: every team namespace denies ingress by default."""

from __future__ import annotations

from pulumi_policy import ReportViolation, Severity, StackValidationArgs, StackValidationPolicy

from policies.frameworks import HIPAA, ISO27001, SOC2, cis_eks
from policies.kubernetes.core.team_namespaces import in_namespace, team_namespaces
from policies.props import get, items

NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"


def is_default_deny_ingress(props) -> bool:
    """Selects every pod, governs Ingress and allows no ingress rule."""
    selector = get(props, "spec", "podSelector", default={})
    selects_all = not get(selector, "matchLabels") and not get(selector, "matchExpressions")
    types = [str(t) for t in items(get(props, "spec", "policyTypes"))]
    return selects_all and "Ingress" in types and not items(get(props, "spec", "ingress"))


def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    for namespace, resource in team_namespaces(args.resources):
        policies = in_namespace(args.resources, NETWORK_POLICY, namespace)
        if not any(is_default_deny_ingress(p.props) for p in policies):
            report_violation(f"Team namespace '{namespace}' has no default-deny ingress NetworkPolicy.",
                             resource.urn)


kubernetes_networking_namespace_default_deny = StackValidationPolicy(
    name="kubernetes-networking-namespace-default-deny",
    description="Every team namespace has a NetworkPolicy that selects all pods and denies ingress by default.",
    validate=validate,
    severity=Severity.HIGH,
    framework=cis_eks("5.4.4"),
    tags=["kubernetes", "network", "multi-tenancy", SOC2, ISO27001, HIPAA],
    remediation_steps="Add a NetworkPolicy with podSelector {} and policyTypes ['Ingress'] to the namespace, "
                      "then allow the traffic each service needs explicitly.",
    url="https://kubernetes.io/docs/concepts/services-networking/network-policies/#default-deny-all-ingress-traffic",
)
