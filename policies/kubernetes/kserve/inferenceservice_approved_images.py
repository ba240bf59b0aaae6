"""kubernetes-kserve-inferenceservice-approved-images: serving images come from approved registries."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from pulumi_policy import (
    PolicyConfigSchema,
    PolicyResource,
    ReportViolation,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

from policies.defaults import APPROVED_REGISTRIES_SCHEMA, DEFAULT_APPROVED_REGISTRIES
from policies.frameworks import ISO27001, SOC2, cis_eks
from policies.images import (
    approved_patterns,
    describe_approved,
    duplicate_problem,
    image_approved,
    prefix_problem,
)
from policies.kubernetes.workloads.pods import INFERENCE_SERVICE, SERVING_RUNTIMES, all_containers, resource_label
from policies.props import config_value, describe, get, is_list, items

STACK_REFERENCE = "pulumi:pulumi:StackReference"
# Platform outputs that are ARNs of resources the platform stack holds (infra/platform_outputs.py).
PLATFORM_ARN_OUTPUTS = ("modelStoreKmsKeyArn", "oidcProviderArn", "teamRoleBoundaryArn")
_ARN_ACCOUNT = re.compile(r"^arn:aws(?:-cn|-us-gov)?:[a-z0-9-]+:[a-z0-9-]*:([0-9]{12}):")


def _known(props: Any, *path: str) -> Any:
    """``get``, or None where the value is unknown during preview (a resource not created yet)."""
    try:
        return get(props, *path)
    except UnknownValueError:
        return None


def _own_arns(resource: PolicyResource) -> Iterator[Any]:
    if resource.resource_type.startswith("aws:"):
        yield _known(resource.props, "arn")
    elif resource.resource_type == STACK_REFERENCE:
        for key in PLATFORM_ARN_OUTPUTS:
            yield _known(resource.props, "outputs", key)


def stack_accounts(resources: list[PolicyResource]) -> tuple[str, ...]:
    """The AWS accounts the stack's own resources (or its platform stack's) live in, from their ARNs.

    Only ARNs of resources the stack holds count, never ARNs it merely references (a CI principal of
    another account), so "the account's own ECR" is exactly the account the stack deploys into.
    """
    found = {m.group(1) for r in resources for arn in _own_arns(r)
             if isinstance(arn, str) and (m := _ARN_ACCOUNT.match(arn))}
    return tuple(sorted(found))


def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    raw = config_value(args, "approvedRegistries", list(DEFAULT_APPROVED_REGISTRIES))
    if not is_list(raw):
        report_violation(f"Pack config approvedRegistries is {describe(raw)!r}; it must be a list of prefixes.")
    configured = [str(e) for e in items(raw)]
    # An allowlist entry that is too broad is itself a finding, and is left out rather than trusted.
    for entry in configured:
        problem = prefix_problem(entry)
        if problem:
            report_violation(f"Pack config approvedRegistries entry '{entry}' {problem}.")
    repeated = duplicate_problem(configured)
    if repeated:
        report_violation(f"Pack config approvedRegistries {repeated}.")
    accounts = stack_accounts(args.resources)
    patterns = approved_patterns(configured, accounts)
    for resource in args.resources:
        if resource.resource_type != INFERENCE_SERVICE and resource.resource_type not in SERVING_RUNTIMES:
            continue
        for path, container in all_containers(resource.resource_type, resource.props):
            image = get(container, "image")
            if image is None:
                continue  # the runtime's image (checked on the ServingRuntime itself)
            if not image_approved(str(image), patterns):
                report_violation(f"{resource_label(resource.resource_type, resource.name)} container at {path} uses "
                                 f"image '{image}' from an unapproved registry (allowed: "
                                 f"{describe_approved(configured, accounts)}).", resource.urn)


kubernetes_kserve_inferenceservice_approved_images = StackValidationPolicy(
    name="kubernetes-kserve-inferenceservice-approved-images",
    description="InferenceService and ServingRuntime images come from approved registry prefixes (config "
                "approvedRegistries, each a registry host and repository path ending in '/') or the ECR of the "
                "account the stack deploys into.",
    validate=validate,
    config_schema=PolicyConfigSchema(properties={
        "approvedRegistries": APPROVED_REGISTRIES_SCHEMA,
    }),
    severity=Severity.HIGH,
    framework=cis_eks("5.1.4"),
    tags=["kubernetes", "kserve", "supply-chain", SOC2, ISO27001],
    remediation_steps="Push the image to the stack account's ECR registry and reference it by digest "
                      "(image: <account>.dkr.ecr.<region>.amazonaws.com/<repo>@sha256:...), or add a narrow prefix "
                      "(registry host and repository path ending in '/') to approvedRegistries and "
                      "cluster.approvedRegistries alike.",
    url="https://docs.aws.amazon.com/eks/latest/best-practices/image-security.html",
)
