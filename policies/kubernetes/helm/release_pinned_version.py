"""kubernetes-helm-release-pinned-version: Helm releases pin an exact chart version."""

from __future__ import annotations

import re

from pulumi_policy import ReportViolation, ResourceValidationArgs, ResourceValidationPolicy, Severity

from policies.frameworks import ISO27001, SOC2, cis_eks
from policies.props import get

RELEASE = "kubernetes:helm.sh/v3:Release"
# An exact SemVer 2 version with an optional leading v: no ranges, wildcards or constraints.
EXACT = re.compile(r"^v?\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != RELEASE:
        return
    version = str(get(args.props, "version", default=""))
    if not EXACT.fullmatch(version):
        report_violation(f"Helm release '{args.name}' (chart {get(args.props, 'chart')}) has version "
                         f"'{version}'; pin an exact version.")


kubernetes_helm_release_pinned_version = ResourceValidationPolicy(
    name="kubernetes-helm-release-pinned-version",
    description="Helm releases pin an exact chart version (no empty version, ranges or wildcards).",
    validate=validate,
    severity=Severity.MEDIUM,
    framework=cis_eks("5.1"),
    tags=["kubernetes", "helm", "supply-chain", SOC2, ISO27001],
    remediation_steps="Pin the chart version in infra/versions.py.",
    url="https://helm.sh/docs/topics/charts/#the-chart-file",
)
