"""aws-all-resource-allowed-region: AWS resources live in an approved region.

The engine gives policies no resolved provider region offline, so the region is read from what the
resource's own inputs state: a per-resource ``region`` (pulumi-aws v7), an ``availabilityZone``
(``us-east-1a`` -> ``us-east-1``) and every ARN in the inputs (``arn:aws:<svc>:<region>:…``). That is
exact for subnets, node groups, log groups and KMS-referencing resources, and works in the offline
preview; resources that state no region anywhere are not judged.
"""

from __future__ import annotations

import re

from pulumi_policy import (
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
)

from policies.defaults import DEFAULT_ALLOWED_REGIONS as ALLOWED_REGIONS
from policies.frameworks import GDPR, ISO27001, SOC2, platform_baseline
from policies.props import config_value, get, walk_strings

DEFAULT_ALLOWED_REGIONS = list(ALLOWED_REGIONS)
_ARN_REGION = re.compile(r"arn:aws[a-z-]*:[a-z0-9-]+:([a-z]{2}(?:-gov)?-[a-z]+-\d):")
_AZ = re.compile(r"^([a-z]{2}(?:-gov)?-[a-z]+-\d)[a-z]$")


def stated_regions(props) -> dict[str, str]:
    """Region -> the property path that states it."""
    found: dict[str, str] = {}
    region = get(props, "region")
    if isinstance(region, str) and region:
        found.setdefault(region, "region")
    zone = _AZ.fullmatch(str(get(props, "availabilityZone", default="")))
    if zone:
        found.setdefault(zone.group(1), "availabilityZone")
    for path, text in walk_strings(props):
        for match in _ARN_REGION.finditer(text):
            found.setdefault(match.group(1), path)
    return found


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if not args.resource_type.startswith("aws:"):
        return
    allowed = [str(r) for r in config_value(args, "allowedRegions", DEFAULT_ALLOWED_REGIONS)]
    for region, path in sorted(stated_regions(args.props).items()):
        if region not in allowed:
            report_violation(f"AWS resource '{args.name}' is in region '{region}' (from {path}); "
                             f"allowed: {', '.join(allowed)}.")


aws_all_resource_allowed_region = ResourceValidationPolicy(
    name="aws-all-resource-allowed-region",
    description="AWS resources are created only in approved regions (config allowedRegions), judged from "
                "the region, availability zone and ARNs their inputs state.",
    validate=validate,
    config_schema=PolicyConfigSchema(properties={
        "allowedRegions": {"type": "array", "items": {"type": "string"}, "default": DEFAULT_ALLOWED_REGIONS},
    }),
    severity=Severity.HIGH,
    framework=platform_baseline("data-residency"),
    tags=["aws", "data-residency", GDPR, SOC2, ISO27001],
    remediation_steps="Set aws:region in stacks/Pulumi.<stack>.yaml to an approved region, or have the "
                      "allowlist in policies/config/<env>.json extended.",
    url="https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_scps_examples_general.html",
)
