"""kubernetes-kserve-inferenceservice-pinned-images: serving images are pinned by version tag or digest."""

from __future__ import annotations

from pulumi_policy import (
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
)

from policies.frameworks import ISO27001, SOC2, cis_eks
from policies.images import VERSION_RULE, pin_problem, tag_problem
from policies.kubernetes.workloads.pods import INFERENCE_SERVICE, SERVING_RUNTIMES, all_containers, resource_label
from policies.props import config_value, get, truthy

CLUSTER_SERVING_RUNTIME = "kubernetes:serving.kserve.io/v1alpha1:ClusterServingRuntime"


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != INFERENCE_SERVICE and args.resource_type not in SERVING_RUNTIMES:
        return
    # Team-supplied images (InferenceServices, namespaced ServingRuntimes) may have to be pinned by digest.
    # The platform's ClusterServingRuntime keeps its reviewed version tag from infra/versions.py: one pin in
    # one place, bumped by a reviewed change, and teams cannot create cluster-scoped objects.
    require_digest = (truthy(config_value(args, "requireDigest", False))
                      and args.resource_type != CLUSTER_SERVING_RUNTIME)
    label = resource_label(args.resource_type, args.name)
    for path, container in all_containers(args.resource_type, args.props):
        # KServe swaps the runtime image's tag for runtimeVersion, so it must be a version as well.
        runtime_version = get(container, "runtimeVersion")
        version_problem = None if runtime_version is None else tag_problem(str(runtime_version))
        if version_problem:
            report_violation(f"{label} {path}.runtimeVersion '{runtime_version}' {version_problem}; pin "
                             f"{VERSION_RULE}.")
        image = get(container, "image")
        if image is None:
            continue  # the runtime's image (checked on the ServingRuntime itself)
        problem = pin_problem(str(image), require_digest=require_digest)
        if problem:
            report_violation(f"{label} container at {path} image '{image}' {problem}.")


kubernetes_kserve_inferenceservice_pinned_images = ResourceValidationPolicy(
    name="kubernetes-kserve-inferenceservice-pinned-images",
    description="InferenceService and ServingRuntime images are pinned by a sha256 digest or a version tag of at "
                "least major.minor (1.2, 1.2.3, v2.1) holding no moving word (latest, main, stable, nightly, "
                "snapshot, dev, ...); with requireDigest, team images by digest.",
    validate=validate,
    config_schema=PolicyConfigSchema(properties={
        "requireDigest": {"type": "boolean", "default": False},
    }),
    severity=Severity.HIGH,
    framework=cis_eks("5.1"),  # Image registry and image scanning; no control names pinning itself
    tags=["kubernetes", "kserve", "supply-chain", SOC2, ISO27001],
    remediation_steps="Reference the image by digest (image: <repo>@sha256:<64 hex>, as `docker buildx imagetools "
                      "inspect` or `aws ecr describe-images` print it) or by an exact version tag such as 1.2.3; "
                      "never a bare major (1, v1) or a tag holding latest, main, stable, nightly, snapshot or dev "
                      "(1-latest, 1.0.0-SNAPSHOT).",
    url="https://docs.aws.amazon.com/eks/latest/best-practices/image-security.html",
)
