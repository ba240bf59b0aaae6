"""aws-ec2-launchtemplate-imdsv2: instances launched from templates require IMDSv2 tokens."""

from __future__ import annotations

from pulumi_policy import ReportViolation, ResourceValidationArgs, ResourceValidationPolicy, Severity

from policies.frameworks import CIS_EKS, ISO27001, SOC2, aws_fsbp
from policies.props import count, describe, get

LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != LAUNCH_TEMPLATE:
        return
    tokens = get(args.props, "metadataOptions", "httpTokens", default="optional")
    if tokens != "required":
        report_violation(f"Launch template '{args.name}' has metadataOptions.httpTokens '{tokens}'; "
                         "it must be 'required' (IMDSv2).")
    hops = get(args.props, "metadataOptions", "httpPutResponseHopLimit")
    if hops is None:
        return
    # Hop limit 1 keeps pods (one hop further) from reaching the node role's credentials.
    limit = count(hops)
    if limit is None or limit < 1:
        report_violation(f"Launch template '{args.name}' has metadataOptions.httpPutResponseHopLimit "
                         f"'{describe(hops)}', not a whole number of hops from 1 to 64; use 1.")
    elif limit > 1:
        report_violation(f"Launch template '{args.name}' has metadataOptions.httpPutResponseHopLimit "
                         f"{limit}; pods can reach the node's credentials (use 1).")


aws_ec2_launchtemplate_imdsv2 = ResourceValidationPolicy(
    name="aws-ec2-launchtemplate-imdsv2",
    description="Launch templates require IMDSv2 (httpTokens 'required') with a response hop limit of 1.",
    validate=validate,
    severity=Severity.HIGH,
    framework=aws_fsbp("EC2.170"),
    tags=["aws", "ec2", "imds", CIS_EKS, SOC2, ISO27001],
    remediation_steps="Set metadataOptions={httpTokens: 'required', httpPutResponseHopLimit: 1} on the launch "
                      "template (infra/components/node_launch_template.py).",
    url="https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/configuring-IMDS-new-instances.html",
)
