"""kubernetes-core-pod-no-host-namespaces: no pod shares the node's network, PID or IPC namespace."""

from __future__ import annotations

from pulumi_policy import ReportViolation, ResourceValidationArgs, ResourceValidationPolicy, Severity

from policies.frameworks import ISO27001, SOC2, cis_eks
from policies.kubernetes.workloads.pods import pod_specs, resource_label
from policies.props import get, truthy

HOST_NAMESPACES = ("hostNetwork", "hostPID", "hostIPC")


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    for path, spec in pod_specs(args.resource_type, args.props):
        for key in HOST_NAMESPACES:
            if truthy(get(spec, key)):
                report_violation(f"{resource_label(args.resource_type, args.name)} sets {key} true at {path}.")


kubernetes_core_pod_no_host_namespaces = ResourceValidationPolicy(
    name="kubernetes-core-pod-no-host-namespaces",
    description="Pods of any workload do not use hostNetwork, hostPID or hostIPC.",
    validate=validate,
    severity=Severity.HIGH,
    framework=cis_eks("4.2.4"),
    tags=["kubernetes", "pod-security", SOC2, ISO27001],
    remediation_steps="Remove hostNetwork/hostPID/hostIPC; expose ports through a Service instead.",
    url="https://kubernetes.io/docs/concepts/security/pod-security-standards/",
)
