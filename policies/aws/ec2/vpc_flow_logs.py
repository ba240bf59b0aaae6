"""aws-ec2-vpc-flow-logs: every VPC the platform runs in records its traffic in flow logs."""

from __future__ import annotations

from pulumi_policy import ReportViolation, Severity, StackValidationArgs, StackValidationPolicy

from policies.aws.ec2.vpcs import VPC, clusters_in_unmanaged_vpcs, of_type
from policies.frameworks import HIPAA, ISO27001, SOC2, aws_fsbp
from policies.props import get

FLOW_LOG = "aws:ec2/flowLog:FlowLog"


def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    for cluster in clusters_in_unmanaged_vpcs(args.resources):
        report_violation(f"EKS cluster '{cluster.name}' runs in a VPC this stack does not create, so its flow logs "
                         "cannot be verified; enable flow logs (traffic ALL) on that VPC and waive this with the "
                         "flow log's id.", cluster.urn)
    recording = [f for f in of_type(args.resources, FLOW_LOG) if get(f.props, "trafficType") == "ALL"]
    for vpc in of_type(args.resources, VPC)[len(recording):]:
        report_violation(f"VPC '{vpc.name}' has no flow log recording ALL traffic.", vpc.urn)


aws_ec2_vpc_flow_logs = StackValidationPolicy(
    name="aws-ec2-vpc-flow-logs",
    description="Every VPC the stack creates has a flow log of ALL traffic; a cluster in a VPC the stack does not "
                "create is flagged, since its flow logs cannot be verified.",
    validate=validate,
    severity=Severity.MEDIUM,
    framework=aws_fsbp("EC2.6"),
    tags=["aws", "ec2", "network", "logging", SOC2, ISO27001, HIPAA],
    remediation_steps="Let the platform create the VPC (drop network.existingVpcId), or enable VPC flow logs on "
                      "the existing VPC and record a waiver naming the flow log.",
    url="https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs.html",
)
