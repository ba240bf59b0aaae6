"""kubernetes-kserve-inferenceservice-service-account: predictors run as a dedicated service account."""

from __future__ import annotations

from pulumi_policy import ReportViolation, ResourceValidationArgs, ResourceValidationPolicy, Severity

from policies.frameworks import ISO27001, SOC2, cis_eks
from policies.kubernetes.workloads.pods import INFERENCE_SERVICE, pod_specs
from policies.props import get


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != INFERENCE_SERVICE:
        return
    for path, spec in pod_specs(args.resource_type, args.props):
        account = get(spec, "serviceAccountName", default="default")
        if account == "default":
            report_violation(f"InferenceService '{args.name}' {path} runs as the 'default' service account.")


kubernetes_kserve_inferenceservice_service_account = ResourceValidationPolicy(
    name="kubernetes-kserve-inferenceservice-service-account",
    description="InferenceService components set a serviceAccountName other than 'default' (IRSA scoped "
                "to the team's models).",
    validate=validate,
    severity=Severity.MEDIUM,
    framework=cis_eks("4.1.5"),
    tags=["kubernetes", "kserve", "identity", SOC2, ISO27001],
    remediation_steps="Set serviceAccountName to the team's serving account (TeamWorkspace 'model-serving').",
    url="https://kserve.github.io/website/docs/model-serving/storage/providers/s3/",
)
