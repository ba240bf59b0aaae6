"""kubernetes-kserve-inferenceservice-resources: every serving container sets requests and limits."""

from __future__ import annotations

from pulumi_policy import ReportViolation, ResourceValidationArgs, ResourceValidationPolicy, Severity

from policies.frameworks import ISO27001, SOC2, cis_eks
from policies.kubernetes.workloads.pods import INFERENCE_SERVICE, all_containers
from policies.props import get

REQUIRED = ("cpu", "memory")


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != INFERENCE_SERVICE:
        return
    for path, container in all_containers(args.resource_type, args.props):
        for section in ("requests", "limits"):
            values = get(container, "resources", section, default={})
            missing = [r for r in REQUIRED if get(values, r) is None]
            if missing:
                report_violation(f"InferenceService '{args.name}' container at {path} has no "
                                 f"resources.{section} for {', '.join(missing)}.")


kubernetes_kserve_inferenceservice_resources = ResourceValidationPolicy(
    name="kubernetes-kserve-inferenceservice-resources",
    description="InferenceService containers (model or containers[]) set cpu and memory requests and limits.",
    validate=validate,
    severity=Severity.MEDIUM,
    framework=cis_eks("5.7"),
    tags=["kubernetes", "kserve", "availability", SOC2, ISO27001],
    remediation_steps="Give the model in stacks/Pulumi.<team>.yaml cpu and memory; the program sets "
                      "requests = limits from them (infra/components/inference_service.py).",
    url="https://kubernetes.io/docs/concepts/configuration/manage-resources-containers/",
)
