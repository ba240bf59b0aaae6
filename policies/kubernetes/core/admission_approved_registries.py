"""kubernetes-admission-approved-registries: the cluster admits images only from the pack's approved registries.

The platform stack's ``aip-approved-registries`` ValidatingAdmissionPolicy judges every pod in a team
namespace against the stack's ``cluster.approvedRegistries``. That list is stack config, so without this
policy a stack could widen the in-cluster allowlist (docker.io/library/, docker.io/someone/) past the one
the pack's reviewers approved. The admission policy records the normalised prefixes it admits in an annotation
(policies/images.py APPROVED_REGISTRIES_ANNOTATION), readable during a preview even where its CEL is not.
"""

from __future__ import annotations

from typing import Any

from pulumi_policy import (
    PolicyConfigSchema,
    ReportViolation,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

from policies.defaults import APPROVED_REGISTRIES_SCHEMA, DEFAULT_APPROVED_REGISTRIES
from policies.frameworks import ISO27001, SOC2, cis_eks
from policies.images import APPROVED_REGISTRIES_ANNOTATION, describe_approved, uncovered_prefixes
from policies.props import config_value, get, items

VALIDATING_ADMISSION_POLICY = "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicy"
CLUSTER = "aws:eks/cluster:Cluster"
POLICY_NAME = "aip-approved-registries"
_UNKNOWN = object()


def _read(props: Any, *path: str) -> Any:
    """``get``, or _UNKNOWN where the value is not known during preview."""
    try:
        return get(props, *path)
    except UnknownValueError:
        return _UNKNOWN


def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    # Entries the pack cannot use (too broad, malformed) cover nothing here; the approved-images policy
    # reports them.
    approved = [str(e) for e in items(config_value(args, "approvedRegistries", list(DEFAULT_APPROVED_REGISTRIES)))]
    policies = [r for r in args.resources if r.resource_type == VALIDATING_ADMISSION_POLICY
                and _read(r.props, "metadata", "name") == POLICY_NAME]
    clusters = [r for r in args.resources if r.resource_type == CLUSTER]
    if clusters and not policies:
        report_violation(f"The stack creates EKS cluster '{clusters[0].name}' but no ValidatingAdmissionPolicy "
                         f"'{POLICY_NAME}', so pods in team namespaces may pull images from any registry; create "
                         "it with AdmissionPolicies (infra/components/admission_policies.py).", clusters[0].urn)
    for policy in policies:
        recorded = _read(policy.props, "metadata", "annotations", APPROVED_REGISTRIES_ANNOTATION)
        if recorded is _UNKNOWN:
            continue
        if not isinstance(recorded, str):
            report_violation(f"ValidatingAdmissionPolicy '{POLICY_NAME}' has no {APPROVED_REGISTRIES_ANNOTATION} "
                             "annotation, so the registry prefixes it admits cannot be checked against the pack's "
                             "approvedRegistries; create it with AdmissionPolicies "
                             "(infra/components/admission_policies.py), which records them.", policy.urn)
            continue
        enforced = [e.strip() for e in recorded.split(",") if e.strip()]
        for prefix in uncovered_prefixes(enforced, approved):
            report_violation(f"ValidatingAdmissionPolicy '{POLICY_NAME}' admits team images under '{prefix}', "
                             f"which the pack's approvedRegistries ({describe_approved(approved, ())}) do not "
                             "cover; remove it from cluster.approvedRegistries or have it reviewed into the pack's "
                             "approvedRegistries.", policy.urn)


kubernetes_admission_approved_registries = StackValidationPolicy(
    name="kubernetes-admission-approved-registries",
    description="The cluster's aip-approved-registries ValidatingAdmissionPolicy exists and admits team images only "
                "under prefixes the pack's approvedRegistries cover (as its ai-platform.io/approved-registries "
                "annotation records them), so a stack's cluster.approvedRegistries cannot widen the reviewed list.",
    validate=validate,
    config_schema=PolicyConfigSchema(properties={
        "approvedRegistries": APPROVED_REGISTRIES_SCHEMA,
    }),
    severity=Severity.HIGH,
    framework=cis_eks("5.1.4"),
    tags=["kubernetes", "admission", "supply-chain", SOC2, ISO27001],
    remediation_steps="Keep cluster.approvedRegistries within the pack's approvedRegistries (default "
                      "policies/defaults.py): drop the extra prefix, narrow it to a repository path the pack "
                      "approves, or widen the pack's list through review (both policies that read approvedRegistries "
                      "in policies/config/<env>.json alike).",
    url="https://kubernetes.io/docs/reference/access-authn-authz/validating-admission-policy/",
)
