"""kubernetes-kserve-inferenceservice-approved-images: serving images come from approved registries, pinned."""

from __future__ import annotations

from pulumi_policy import (
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
)

from policies.frameworks import ISO27001, SOC2, cis_eks
from policies.kubernetes.workloads.pods import INFERENCE_SERVICE, SERVING_RUNTIMES, all_containers, resource_label
from policies.props import config_value, get

DEFAULT_APPROVED_REGISTRIES = ["docker.io/pytorch/", "public.ecr.aws/", "123456789012.dkr.ecr."]


def normalise(image: str) -> str:
    """Docker Hub short names as the runtime resolves them: ``pytorch/x`` -> ``docker.io/pytorch/x``."""
    first = image.split("/", 1)[0]
    if "/" not in image:
        return f"docker.io/library/{image}"
    if "." not in first and ":" not in first and first != "localhost":
        return f"docker.io/{image}"
    return image


def pin_problem(image: str) -> str | None:
    if "@sha256:" in image:
        return None
    tag = image.rsplit("/", 1)[-1].partition(":")[2]
    if not tag:
        return "has no tag or digest"
    if tag == "latest":
        return "uses the 'latest' tag"
    return None


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != INFERENCE_SERVICE and args.resource_type not in SERVING_RUNTIMES:
        return
    approved = [str(r) for r in config_value(args, "approvedRegistries", DEFAULT_APPROVED_REGISTRIES)]
    for path, container in all_containers(args.resource_type, args.props):
        image = get(container, "image")
        if image is None:
            continue  # the runtime's image (checked on the ServingRuntime itself)
        label = resource_label(args.resource_type, args.name)
        if not any(normalise(str(image)).startswith(prefix) for prefix in approved):
            report_violation(f"{label} container at {path} uses image '{image}' from an unapproved registry.")
        problem = pin_problem(str(image))
        if problem:
            report_violation(f"{label} container at {path} image '{image}' {problem}; pin an exact tag or digest.")


kubernetes_kserve_inferenceservice_approved_images = ResourceValidationPolicy(
    name="kubernetes-kserve-inferenceservice-approved-images",
    description="InferenceService and ServingRuntime images come from approved registries (config "
                "approvedRegistries, prefixes) and are pinned by digest or exact tag, never 'latest'.",
    validate=validate,
    config_schema=PolicyConfigSchema(properties={
        "approvedRegistries": {"type": "array", "items": {"type": "string"}, "default": DEFAULT_APPROVED_REGISTRIES},
    }),
    severity=Severity.HIGH,
    framework=cis_eks("5.1.4"),
    tags=["kubernetes", "kserve", "supply-chain", SOC2, ISO27001],
    remediation_steps="Push the image to the platform ECR registry and reference it by digest "
                      "(image: <account>.dkr.ecr.<region>.amazonaws.com/<repo>@sha256:...).",
    url="https://docs.aws.amazon.com/eks/latest/best-practices/image-security.html",
)
