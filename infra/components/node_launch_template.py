"""The launch template every managed node group uses: encrypted gp3 root volume, IMDSv2 only."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws


def metadata_options() -> dict[str, Any]:
    """IMDSv2 only, and a hop limit of 1 so pods cannot reach the node's credentials.

    Pods get AWS credentials through IRSA instead.
    https://docs.aws.amazon.com/eks/latest/best-practices/identity-and-access-management.html
    """
    return {"http_endpoint": "enabled", "http_tokens": "required", "http_put_response_hop_limit": 1,
            "instance_metadata_tags": "disabled"}


def root_volume(size_gib: int, kms_key_arn: pulumi.Input[str]) -> dict[str, Any]:
    """The node's root volume: gp3, encrypted with the platform's customer key."""
    return {"device_name": "/dev/xvda", "ebs": {
        "volume_size": size_gib, "volume_type": "gp3", "encrypted": "true", "kms_key_id": kms_key_arn,
        "delete_on_termination": "true"}}


def node_launch_template(name: str, *, volume_gib: int, kms_key_arn: pulumi.Input[str],
                         parent: pulumi.Resource) -> aws.ec2.LaunchTemplate:
    """A launch template for an EKS managed node group (the AMI comes from the node group's amiType)."""
    return aws.ec2.LaunchTemplate(
        name,
        block_device_mappings=[root_volume(volume_gib, kms_key_arn)],
        metadata_options=metadata_options(),
        update_default_version=True,
        opts=pulumi.ResourceOptions(parent=parent),
    )
