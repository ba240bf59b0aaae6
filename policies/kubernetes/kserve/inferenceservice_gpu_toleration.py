"""kubernetes-kserve-inferenceservice-gpu-toleration: only GPU-requesting services tolerate GPU nodes, and they do."""

from __future__ import annotations

from pulumi_policy import ReportViolation, ResourceValidationArgs, ResourceValidationPolicy, Severity

from policies.frameworks import CIS_EKS, SOC2, platform_baseline
from policies.kubernetes.workloads.pods import INFERENCE_SERVICE, containers, pod_specs
from policies.props import get, items

GPU = "nvidia.com/gpu"


def tolerates_gpu(pod_spec) -> bool:
    return any(get(t, "key") == GPU and get(t, "effect", default="NoSchedule") in ("NoSchedule", "")
               for t in items(get(pod_spec, "tolerations")))


def requests_gpu(pod_path: str, pod_spec) -> bool:
    return any(get(c, "resources", section, GPU) is not None
               for _, c in containers(pod_path, pod_spec) for section in ("requests", "limits"))


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != INFERENCE_SERVICE:
        return
    for path, spec in pod_specs(args.resource_type, args.props):
        gpu, tolerated = requests_gpu(path, spec), tolerates_gpu(spec)
        if gpu and not tolerated:
            report_violation(f"InferenceService '{args.name}' {path} requests {GPU} but has no toleration "
                             f"for the {GPU} taint.")
        if tolerated and not gpu:
            report_violation(f"InferenceService '{args.name}' {path} tolerates the {GPU} taint without "
                             f"requesting {GPU}; it would occupy GPU nodes without using a GPU.")


kubernetes_kserve_inferenceservice_gpu_toleration = ResourceValidationPolicy(
    name="kubernetes-kserve-inferenceservice-gpu-toleration",
    description="InferenceServices tolerate the nvidia.com/gpu taint exactly when they request nvidia.com/gpu.",
    validate=validate,
    severity=Severity.MEDIUM,
    framework=platform_baseline("gpu-placement"),
    tags=["kubernetes", "kserve", "gpu", "cost", CIS_EKS, SOC2],
    remediation_steps="Use the tolerations of the GPU pool from the platform stack's gpuPools output "
                      "(infra/components/inference_service.py does so when the model sets gpu).",
    url="https://kubernetes.io/docs/concepts/scheduling-eviction/taint-and-toleration/",
)
