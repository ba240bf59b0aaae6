"""EKS, EC2, KMS, region and tag policies: compliant baselines from the prod preview, one mutation per violation."""

from __future__ import annotations

from typing import Any

import pytest

from policies.aws.ec2.launch_template_ebs_encrypted import LAUNCH_TEMPLATE, aws_ec2_launchtemplate_ebs_encrypted
from policies.aws.ec2.launch_template_imdsv2 import aws_ec2_launchtemplate_imdsv2
from policies.aws.eks.cluster_audit_logging import CLUSTER, aws_eks_cluster_audit_logging
from policies.aws.eks.cluster_endpoint_private import aws_eks_cluster_endpoint_private
from policies.aws.eks.cluster_secrets_encryption import aws_eks_cluster_secrets_encryption
from policies.aws.eks.cluster_supported_version import aws_eks_cluster_supported_version
from policies.aws.eks.nodegroup_gpu_budget import aws_eks_nodegroup_gpu_budget
from policies.aws.eks.nodegroup_gpu_taint import aws_eks_nodegroup_gpu_taint
from policies.aws.eks.nodegroup_instance_types import aws_eks_nodegroup_instance_types
from policies.aws.eks.nodegroup_launch_template import aws_eks_nodegroup_launch_template
from policies.aws.eks.nodegroups import NODE_GROUP
from policies.aws.kms.key_rotation import KEY, aws_kms_key_rotation
from policies.aws.tagging.resource_allowed_region import aws_all_resource_allowed_region
from policies.aws.tagging.resource_required_tags import aws_all_resource_required_tags
from tests.policies.support import DELETE, mutate, resource, validate_resource, validate_stack

KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/8d80d593"
TAGS = {"team": "platform", "environment": "prod", "cost-center": "ml-platform-prod",
        "data-classification": "confidential", "managed-by": "pulumi"}
EKS_CLUSTER = {
    "name": "aip-prod", "version": "1.34", "tags": TAGS,
    "roleArn": "arn:aws:iam::123456789012:role/aip-prod-cluster-control-plane",
    "vpcConfig": {"endpointPublicAccess": False, "endpointPrivateAccess": True, "subnetIds": ["subnet-1"]},
    "enabledClusterLogTypes": ["api", "audit", "authenticator", "controllerManager", "scheduler"],
    "encryptionConfig": {"resources": ["secrets"], "provider": {"keyArn": KEY_ARN}},
}
GPU_NODE_GROUP = {
    "clusterName": "aip-prod", "amiType": "AL2023_x86_64_NVIDIA", "instanceTypes": ["g6e.2xlarge", "g6e.4xlarge"],
    "taints": [{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}],
    "launchTemplate": {"id": "lt-dbd6d900fa5a34783", "version": "1"},
    "scalingConfig": {"minSize": 1, "desiredSize": 1, "maxSize": 8}, "tags": TAGS,
}
SYSTEM_NODE_GROUP = mutate(mutate(mutate(GPU_NODE_GROUP, "amiType", "AL2023_x86_64_STANDARD"),
                                  "instanceTypes", ["m7i.xlarge"]), "taints", DELETE)
LAUNCH_TEMPLATE_PROPS = {
    "tags": TAGS, "updateDefaultVersion": True,
    "metadataOptions": {"httpEndpoint": "enabled", "httpTokens": "required", "httpPutResponseHopLimit": 1},
    "blockDeviceMappings": [{"deviceName": "/dev/xvda", "ebs": {
        "encrypted": "true", "kmsKeyId": KEY_ARN, "volumeType": "gp3", "volumeSize": 100}}],
}
KMS_KEY = {"enableKeyRotation": True, "deletionWindowInDays": 30, "tags": TAGS, "description": "secrets"}
PUBLIC_WITH_ALLOWLIST = mutate(mutate(EKS_CLUSTER, "vpcConfig.endpointPublicAccess", True),
                               "vpcConfig.publicAccessCidrs", ["203.0.113.0/24"])
SUBNET = {"vpcId": "vpc-1", "cidrBlock": "10.66.0.0/20", "availabilityZone": "us-east-1a", "tags": TAGS}


CASES: list[tuple[Any, str, dict[str, Any], str, Any, str]] = [
    # policy, type, baseline, mutated path, value, message
    (aws_eks_cluster_endpoint_private, CLUSTER, EKS_CLUSTER, "vpcConfig.endpointPublicAccess", True,
     "EKS cluster 'res' has a public endpoint open to 0.0.0.0/0 (no publicAccessCidrs)."),
    (aws_eks_cluster_endpoint_private, CLUSTER, EKS_CLUSTER, "vpcConfig.endpointPublicAccess", DELETE,
     "EKS cluster 'res' has a public endpoint open to 0.0.0.0/0 (no publicAccessCidrs)."),
    (aws_eks_cluster_endpoint_private, CLUSTER, PUBLIC_WITH_ALLOWLIST, "vpcConfig.publicAccessCidrs",
     ["203.0.113.0/24", "0.0.0.0/0"], "EKS cluster 'res' has a public endpoint open to 0.0.0.0/0."),
    (aws_eks_cluster_secrets_encryption, CLUSTER, EKS_CLUSTER, "encryptionConfig", DELETE,
     "EKS cluster 'res' has no encryptionConfig for secrets."),
    (aws_eks_cluster_secrets_encryption, CLUSTER, EKS_CLUSTER, "encryptionConfig.resources", [],
     "EKS cluster 'res' encryptionConfig does not cover 'secrets'."),
    (aws_eks_cluster_secrets_encryption, CLUSTER, EKS_CLUSTER, "encryptionConfig.provider", DELETE,
     "EKS cluster 'res' encryptionConfig has no provider.keyArn."),
    (aws_eks_cluster_audit_logging, CLUSTER, EKS_CLUSTER, "enabledClusterLogTypes", ["api", "authenticator"],
     "EKS cluster 'res' does not enable control plane log types audit."),
    (aws_eks_cluster_audit_logging, CLUSTER, EKS_CLUSTER, "enabledClusterLogTypes", DELETE,
     "EKS cluster 'res' does not enable control plane log types api, audit, authenticator."),
    (aws_eks_cluster_supported_version, CLUSTER, EKS_CLUSTER, "version", "1.29",
     "EKS cluster 'res' runs Kubernetes 1.29; supported: 1.33, 1.34, 1.35."),
    (aws_eks_cluster_supported_version, CLUSTER, EKS_CLUSTER, "version", DELETE,
     "EKS cluster 'res' does not pin a Kubernetes version; supported: 1.33, 1.34, 1.35."),
    (aws_eks_nodegroup_launch_template, NODE_GROUP, GPU_NODE_GROUP, "launchTemplate", DELETE,
     "EKS node group 'res' has no launchTemplate (id or name); its nodes would get IMDSv1 and unencrypted "
     "root volumes."),
    (aws_eks_nodegroup_gpu_taint, NODE_GROUP, GPU_NODE_GROUP, "taints", DELETE,
     "GPU node group 'res' (AL2023_x86_64_NVIDIA) has no nvidia.com/gpu NO_SCHEDULE taint."),
    (aws_eks_nodegroup_gpu_taint, NODE_GROUP, GPU_NODE_GROUP, "taints.0.effect", "PREFER_NO_SCHEDULE",
     "GPU node group 'res' (AL2023_x86_64_NVIDIA) has no nvidia.com/gpu NO_SCHEDULE taint."),
    (aws_eks_nodegroup_instance_types, NODE_GROUP, GPU_NODE_GROUP, "instanceTypes", ["g6e.2xlarge", "x2iedn.32xlarge"],
     "EKS node group 'res' uses instance type 'x2iedn.32xlarge'; family 'x2iedn' is not in allowedInstanceFamilies."),
    (aws_ec2_launchtemplate_imdsv2, LAUNCH_TEMPLATE, LAUNCH_TEMPLATE_PROPS, "metadataOptions.httpTokens", "optional",
     "Launch template 'res' has metadataOptions.httpTokens 'optional'; it must be 'required' (IMDSv2)."),
    (aws_ec2_launchtemplate_imdsv2, LAUNCH_TEMPLATE, LAUNCH_TEMPLATE_PROPS, "metadataOptions", DELETE,
     "Launch template 'res' has metadataOptions.httpTokens 'optional'; it must be 'required' (IMDSv2)."),
    (aws_ec2_launchtemplate_imdsv2, LAUNCH_TEMPLATE, LAUNCH_TEMPLATE_PROPS, "metadataOptions.httpPutResponseHopLimit",
     2.0, "Launch template 'res' has metadataOptions.httpPutResponseHopLimit 2; pods can reach the node's "
          "credentials (use 1)."),
    (aws_ec2_launchtemplate_ebs_encrypted, LAUNCH_TEMPLATE, LAUNCH_TEMPLATE_PROPS, "blockDeviceMappings", DELETE,
     "Launch template 'res' maps no EBS root volume; the AMI default (unencrypted) would be used."),
    (aws_ec2_launchtemplate_ebs_encrypted, LAUNCH_TEMPLATE, LAUNCH_TEMPLATE_PROPS,
     "blockDeviceMappings.0.ebs.encrypted", "false", "Launch template 'res' volume /dev/xvda is not encrypted."),
    (aws_ec2_launchtemplate_ebs_encrypted, LAUNCH_TEMPLATE, LAUNCH_TEMPLATE_PROPS,
     "blockDeviceMappings.0.ebs.kmsKeyId", DELETE,
     "Launch template 'res' volume /dev/xvda has no kmsKeyId (customer managed key)."),
    (aws_kms_key_rotation, KEY, KMS_KEY, "enableKeyRotation", False,
     "KMS key 'res' has enableKeyRotation false; it must be true."),
    (aws_kms_key_rotation, KEY, KMS_KEY, "enableKeyRotation", DELETE,
     "KMS key 'res' has enableKeyRotation null; it must be true."),
    (aws_all_resource_allowed_region, "aws:ec2/subnet:Subnet", SUBNET, "availabilityZone", "ap-southeast-2b",
     "AWS resource 'res' is in region 'ap-southeast-2' (from availabilityZone); allowed: us-east-1, us-west-2, "
     "eu-west-1, eu-central-1."),
    (aws_all_resource_allowed_region, CLUSTER, EKS_CLUSTER, "encryptionConfig.provider.keyArn",
     "arn:aws:kms:sa-east-1:123456789012:key/1", "AWS resource 'res' is in region 'sa-east-1' (from "
     "encryptionConfig.provider.keyArn); allowed: us-east-1, us-west-2, eu-west-1, eu-central-1."),
    (aws_all_resource_allowed_region, CLUSTER, EKS_CLUSTER, "region", "cn-north-1",
     "AWS resource 'res' is in region 'cn-north-1' (from region); allowed: us-east-1, us-west-2, eu-west-1, "
     "eu-central-1."),
    (aws_all_resource_required_tags, KEY, KMS_KEY, "tags.cost-center", DELETE,
     "AWS resource 'res' (aws:kms/key:Key) lacks tags cost-center."),
    (aws_all_resource_required_tags, KEY, KMS_KEY, "tags.team", " ",
     "AWS resource 'res' (aws:kms/key:Key) lacks tags team."),
    (aws_all_resource_required_tags, KEY, KMS_KEY, "tags", {},
     "AWS resource 'res' (aws:kms/key:Key) lacks tags team, environment, cost-center, data-classification, "
     "managed-by."),
]


@pytest.mark.parametrize(("policy", "resource_type", "baseline"), sorted(
    {(c[0].name, c[1], id(c[2])): c[:3] for c in CASES}.values(), key=lambda c: c[0].name),
    ids=lambda v: getattr(v, "name", None))
def test_baseline_passes(policy, resource_type, baseline) -> None:
    assert validate_resource(policy, resource_type, baseline) == []


@pytest.mark.parametrize(("policy", "resource_type", "baseline", "path", "value", "message"), CASES,
                         ids=[f"{c[0].name}:{c[3]}" for c in CASES])
def test_each_violation_is_reported(policy, resource_type, baseline, path, value, message) -> None:
    assert validate_resource(policy, resource_type, mutate(baseline, path, value)) == [message]


def test_config_overrides_defaults() -> None:
    assert validate_resource(aws_eks_cluster_supported_version, CLUSTER, EKS_CLUSTER,
                             config={"supportedVersions": ["1.35"]}) == [
        "EKS cluster 'res' runs Kubernetes 1.34; supported: 1.35."]
    assert validate_resource(aws_eks_nodegroup_instance_types, NODE_GROUP, GPU_NODE_GROUP,
                             config={"allowedInstanceFamilies": ["p5"]}) == [
        "EKS node group 'res' uses instance type 'g6e.2xlarge'; family 'g6e' is not in allowedInstanceFamilies.",
        "EKS node group 'res' uses instance type 'g6e.4xlarge'; family 'g6e' is not in allowedInstanceFamilies."]
    subnet = mutate(SUBNET, "availabilityZone", "eu-west-1a")
    assert validate_resource(aws_all_resource_allowed_region, "aws:ec2/subnet:Subnet", subnet,
                             config={"allowedRegions": ["eu-west-1"]}) == []


def test_non_gpu_node_groups_need_no_gpu_taint_and_untagged_types_are_skipped() -> None:
    assert validate_resource(aws_eks_nodegroup_gpu_taint, NODE_GROUP, SYSTEM_NODE_GROUP) == []
    assert validate_resource(aws_all_resource_required_tags, "aws:iam/rolePolicy:RolePolicy", {"role": "r"}) == []
    assert validate_resource(aws_kms_key_rotation, KEY, mutate(mutate(KMS_KEY, "enableKeyRotation", False),
                                                               "customerMasterKeySpec", "RSA_2048")) == []


def gpu_fleet(*max_sizes: float) -> list:
    groups = [resource(NODE_GROUP, f"gpu-{i}", mutate(GPU_NODE_GROUP, "scalingConfig.maxSize", size))
              for i, size in enumerate(max_sizes)]
    return [*groups, resource(NODE_GROUP, "system", mutate(SYSTEM_NODE_GROUP, "scalingConfig.maxSize", 50))]


def test_gpu_budget_baseline_passes() -> None:
    # Engine numbers arrive as floats (protobuf Struct); system nodes do not count. 2 x 8 nodes of 1 GPU each.
    assert validate_stack(aws_eks_nodegroup_gpu_budget, gpu_fleet(8.0, 8.0)) == []


def test_gpu_budget_exceeded() -> None:
    assert validate_stack(aws_eks_nodegroup_gpu_budget, gpu_fleet(16.0, 17.0)) == [
        "GPU pools can scale to 33 GPUs (gpu-0=16, gpu-1=17); the budget is 32 GPUs."]
    assert validate_stack(aws_eks_nodegroup_gpu_budget, gpu_fleet(3.0), config={"maxGpus": 2}) == [
        "GPU pools can scale to 3 GPUs (gpu-0=3); the budget is 2 GPUs."]


def test_gpu_budget_counts_gpus_not_nodes() -> None:
    # The same 10 nodes, switched to 8-GPU instances: 80 GPUs, not 10.
    eight = resource(NODE_GROUP, "gpu-0", mutate(mutate(GPU_NODE_GROUP, "scalingConfig.maxSize", 10.0),
                                                 "instanceTypes", ["g6e.2xlarge", "g6e.48xlarge"]))
    assert validate_stack(aws_eks_nodegroup_gpu_budget, [eight]) == [
        "GPU pools can scale to 80 GPUs (gpu-0=80); the budget is 32 GPUs."]


def test_gpu_budget_refuses_instance_types_it_cannot_count() -> None:
    odd = resource(NODE_GROUP, "gpu-0", mutate(GPU_NODE_GROUP, "instanceTypes", ["g6.2xlarg"]))
    assert validate_stack(aws_eks_nodegroup_gpu_budget, [odd]) == [
        "GPU node group 'gpu-0' uses instance types whose GPUs are not known (g6.2xlarg); its GPUs cannot be "
        "counted against the budget."]


@pytest.mark.parametrize("hops", [float("inf"), float("nan"), "abc", 0.0, -1.0, True, []], ids=repr)
def test_an_unreadable_hop_limit_is_reported_not_raised(hops) -> None:
    broken = mutate(LAUNCH_TEMPLATE_PROPS, "metadataOptions.httpPutResponseHopLimit", hops)
    [message] = validate_resource(aws_ec2_launchtemplate_imdsv2, LAUNCH_TEMPLATE, broken)
    assert message.startswith("Launch template 'res' has metadataOptions.httpPutResponseHopLimit '")
    assert message.endswith("', not a whole number of hops from 1 to 64; use 1.")
    assert validate_resource(aws_ec2_launchtemplate_imdsv2, LAUNCH_TEMPLATE,
                             mutate(broken, "metadataOptions.httpPutResponseHopLimit", "1")) == []


@pytest.mark.parametrize(("max_size", "shown"), [
    (float("inf"), "scalingConfig.maxSize 'Infinity', not a whole number of nodes"),
    (float("nan"), "scalingConfig.maxSize 'NaN', not a whole number of nodes"),
    ("abc", "scalingConfig.maxSize 'abc', not a whole number of nodes"),
    # A negative size would lower the total and let the other pools past the budget.
    (-100.0, "scalingConfig.maxSize '-100.0', not a whole number of nodes"),
    (DELETE, "no scalingConfig.maxSize"),
], ids=["inf", "nan", "words", "negative", "missing"])
def test_gpu_budget_refuses_a_max_size_it_cannot_count(max_size, shown) -> None:
    fleet = gpu_fleet(40.0)
    fleet.append(resource(NODE_GROUP, "odd", mutate(GPU_NODE_GROUP, "scalingConfig.maxSize", max_size)))
    assert validate_stack(aws_eks_nodegroup_gpu_budget, fleet) == [
        f"GPU node group 'odd' has {shown}; its GPUs cannot be counted against the budget.",
        "GPU pools can scale to 40 GPUs (gpu-0=40); the budget is 32 GPUs."]
