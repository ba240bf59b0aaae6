"""aws-ec2-launchtemplate-ebs-encrypted: every volume a launch template maps is KMS-encrypted."""

from __future__ import annotations

from pulumi_policy import ReportViolation, ResourceValidationArgs, ResourceValidationPolicy, Severity

from policies.frameworks import CIS_EKS, GDPR, HIPAA, ISO27001, SOC2, aws_fsbp
from policies.props import get, items, truthy

LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != LAUNCH_TEMPLATE:
        return
    mappings = [m for m in items(get(args.props, "blockDeviceMappings")) if get(m, "ebs") is not None]
    if not mappings:
        report_violation(f"Launch template '{args.name}' maps no EBS root volume; the AMI default "
                         "(unencrypted) would be used.")
    for mapping in mappings:
        device = get(mapping, "deviceName", default="?")
        if not truthy(get(mapping, "ebs", "encrypted")):
            report_violation(f"Launch template '{args.name}' volume {device} is not encrypted.")
        if not get(mapping, "ebs", "kmsKeyId"):
            report_violation(f"Launch template '{args.name}' volume {device} has no kmsKeyId "
                             "(customer managed key).")


aws_ec2_launchtemplate_ebs_encrypted = ResourceValidationPolicy(
    name="aws-ec2-launchtemplate-ebs-encrypted",
    description="Launch templates encrypt every EBS volume they map with a customer managed KMS key.",
    validate=validate,
    severity=Severity.HIGH,
    framework=aws_fsbp("EC2.3"),
    tags=["aws", "ec2", "encryption", CIS_EKS, SOC2, ISO27001, HIPAA, GDPR],
    remediation_steps="Map the root device with ebs={encrypted: 'true', kmsKeyId: <volumes key ARN>} "
                      "(infra/components/node_launch_template.py).",
    url="https://docs.aws.amazon.com/ebs/latest/userguide/ebs-encryption.html",
)
