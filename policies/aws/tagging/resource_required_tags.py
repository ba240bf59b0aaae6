"""aws-all-resource-required-tags: taggable AWS resources carry the platform's cost and ownership tags."""

from __future__ import annotations

from pulumi_policy import ReportViolation, ResourceValidationArgs, ResourceValidationPolicy, Severity

from policies.frameworks import ISO27001, SOC2, platform_baseline
from policies.props import get, is_mapping

REQUIRED_TAGS = ("team", "environment", "cost-center", "data-classification", "managed-by")


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    # Only resources that have a `tags` input are judged: the stack transformation (infra/tagging.py)
    # sets it on every taggable resource, and inputs alone cannot tell an untaggable type apart.
    if not args.resource_type.startswith("aws:") or "tags" not in args.props:
        return
    tags = get(args.props, "tags", default={})
    present = {key for key in tags if str(tags[key]).strip()} if is_mapping(tags) else set()
    missing = [tag for tag in REQUIRED_TAGS if tag not in present]
    if missing:
        report_violation(f"AWS resource '{args.name}' ({args.resource_type}) lacks tags {', '.join(missing)}.")


aws_all_resource_required_tags = ResourceValidationPolicy(
    name="aws-all-resource-required-tags",
    description="Taggable AWS resources carry non-empty team, environment, cost-center, data-classification "
                "and managed-by tags.",
    validate=validate,
    severity=Severity.LOW,
    framework=platform_baseline("tagging"),
    tags=["aws", "tagging", "cost", SOC2, ISO27001],
    remediation_steps="Register the resource inside the program so the stack transformation in "
                      "infra/tagging.py applies the tags, or pass them explicitly.",
    url="https://docs.aws.amazon.com/whitepapers/latest/tagging-best-practices/tagging-best-practices.html",
)
