"""kubernetes-core-pod-no-host-path: no pod mounts a hostPath volume."""

from __future__ import annotations

from pulumi_policy import ReportViolation, ResourceValidationArgs, ResourceValidationPolicy, Severity

from policies.frameworks import HIPAA, ISO27001, SOC2, cis_eks
from policies.kubernetes.workloads.pods import pod_specs, resource_label
from policies.props import get, items


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    for path, spec in pod_specs(args.resource_type, args.props):
        for volume in items(get(spec, "volumes")):
            if get(volume, "hostPath") is not None:
                report_violation(f"{resource_label(args.resource_type, args.name)} mounts hostPath "
                                 f"'{get(volume, 'hostPath', 'path')}' (volume '{get(volume, 'name')}' at {path}).")


kubernetes_core_pod_no_host_path = ResourceValidationPolicy(
    name="kubernetes-core-pod-no-host-path",
    description="Pods of any workload mount no hostPath volumes.",
    validate=validate,
    severity=Severity.HIGH,
    framework=cis_eks("4.2"),
    tags=["kubernetes", "pod-security", SOC2, ISO27001, HIPAA],
    remediation_steps="Use a PersistentVolumeClaim, emptyDir, configMap or the storage initializer instead.",
    url="https://kubernetes.io/docs/concepts/storage/volumes/#hostpath",
)
