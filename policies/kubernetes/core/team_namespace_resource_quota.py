"""kubernetes-core-namespace-gpu-resource-quota: every team namespace has a quota that caps GPUs."""

from __future__ import annotations

from pulumi_policy import ReportViolation, Severity, StackValidationArgs, StackValidationPolicy

from policies.frameworks import ISO27001, SOC2, cis_eks
from policies.kubernetes.core.team_namespaces import in_namespace, team_namespaces
from policies.props import get

RESOURCE_QUOTA = "kubernetes:core/v1:ResourceQuota"
GPU_REQUESTS = "requests.nvidia.com/gpu"


def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    for namespace, resource in team_namespaces(args.resources):
        quotas = in_namespace(args.resources, RESOURCE_QUOTA, namespace)
        if not quotas:
            report_violation(f"Team namespace '{namespace}' has no ResourceQuota.", resource.urn)
        elif not any(get(q.props, "spec", "hard", GPU_REQUESTS) is not None for q in quotas):
            report_violation(f"Team namespace '{namespace}' has no ResourceQuota with {GPU_REQUESTS}.",
                             resource.urn)


kubernetes_core_namespace_gpu_resource_quota = StackValidationPolicy(
    name="kubernetes-core-namespace-gpu-resource-quota",
    description="Every team namespace has a ResourceQuota whose spec.hard includes requests.nvidia.com/gpu.",
    validate=validate,
    severity=Severity.MEDIUM,
    framework=cis_eks("5.7"),
    tags=["kubernetes", "multi-tenancy", "gpu", "cost", SOC2, ISO27001],
    remediation_steps="Create a ResourceQuota in the team namespace (infra/components/team_workspace.py) with "
                      "spec.hard requests.nvidia.com/gpu, requests.cpu, requests.memory.",
    url="https://kubernetes.io/docs/concepts/policy/resource-quotas/#resource-quota-for-extended-resources",
)
