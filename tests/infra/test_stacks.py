"""Every shipped stack previews cleanly, and each kind of stack holds what it promises."""

from __future__ import annotations

import json

import kubernetes_validate
import pytest

from infra.gpu_catalog import gpu_family
from infra.platform_outputs import PLATFORM_OUTPUT_KEYS
from infra.platform_stack import KEY_PURPOSES
from infra.preview.render import SECRET, kubernetes_objects, plain, to_manifests
from tests.conftest import is_team_stack, only, policy_of, shipped_stacks
from tests.crd_schemas import is_custom_resource, validate_custom_resource

STACKS = shipped_stacks()
PLATFORM_STACKS = [s for s in STACKS if not is_team_stack(s)]
TEAM_STACKS = [s for s in STACKS if is_team_stack(s)]
REQUIRED_TAGS = {"team", "environment", "cost-center", "data-classification", "managed-by"}
# Kubernetes version the manifests are checked against (a supported EKS version).
K8S_VERSION = "1.34"


def test_shipped_stacks_cover_three_environments_and_two_teams():
    assert {"dev", "staging", "prod"} <= set(PLATFORM_STACKS)
    assert len({s.split("-")[0] for s in TEAM_STACKS}) >= 2
    assert len({s.split("-")[1] for s in TEAM_STACKS}) >= 2


@pytest.mark.parametrize("stack", STACKS)
def test_stack_previews_cleanly(preview, stack):
    result = preview(stack)
    assert result.resources, "the program registered nothing"
    assert result.warnings == []


# Written out rather than derived from tagging.is_taggable, so a mistake there cannot hide here.
MUST_BE_TAGGED = {
    "aws:ec2/vpc:Vpc", "aws:ec2/subnet:Subnet", "aws:ec2/natGateway:NatGateway", "aws:ec2/eip:Eip",
    "aws:ec2/internetGateway:InternetGateway", "aws:ec2/routeTable:RouteTable", "aws:ec2/flowLog:FlowLog",
    "aws:ec2/launchTemplate:LaunchTemplate", "aws:eks/cluster:Cluster", "aws:eks/nodeGroup:NodeGroup",
    "aws:eks/addon:Addon", "aws:iam/role:Role", "aws:iam/policy:Policy", "aws:kms/key:Key",
    "aws:s3/bucket:Bucket", "aws:cloudwatch/logGroup:LogGroup",
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider", "aws:s3/bucketObjectv2:BucketObjectv2",
}


@pytest.mark.parametrize("stack", STACKS)
def test_every_taggable_aws_resource_carries_the_required_tags(preview, stack):
    tagged = [r for r in preview(stack).resources if r.type in MUST_BE_TAGGED]
    assert tagged
    for record in tagged:
        assert set(record.inputs.get("tags", {})) >= REQUIRED_TAGS, record.urn


@pytest.mark.parametrize("stack", STACKS)
def test_every_kubernetes_resource_uses_the_explicit_provider_and_carries_labels(preview, stack):
    for record in preview(stack).resources:
        if record.type.startswith("kubernetes:"):
            assert "pulumi:providers:kubernetes::" in (record.options["provider"] or ""), record.urn
            if not record.type.startswith("kubernetes:helm.sh/"):
                assert "ai-platform.io/team" in record.inputs["metadata"]["labels"], record.urn


@pytest.mark.parametrize("stack", STACKS)
def test_manifests_are_valid_kubernetes_objects(preview, stack):
    for manifest in kubernetes_objects(preview(stack)):
        if not is_custom_resource(manifest):
            # Secrets too, whole: their values are masked, their keys kept.
            kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)


@pytest.mark.parametrize("stack", PLATFORM_STACKS)
def test_manifests_show_the_keys_of_secrets_but_never_their_values(preview, stack):
    result = preview(stack)
    passwords = [str(r.output_struct["result"]) for r in result.of_type("random:index/randomPassword:RandomPassword")]
    assert passwords
    text = to_manifests(result)
    assert [p for p in passwords if p in text] == []
    secrets = [m for m in kubernetes_objects(result) if m["kind"] == "Secret"]
    assert secrets
    for manifest in secrets:
        assert manifest["stringData"] and set(manifest["stringData"].values()) == {SECRET}, manifest["metadata"]


@pytest.mark.parametrize("stack", STACKS)
def test_custom_resources_match_their_crds(preview, stack):
    for manifest in kubernetes_objects(preview(stack)):
        if is_custom_resource(manifest):
            validate_custom_resource(manifest)


@pytest.mark.parametrize("stack", PLATFORM_STACKS)
def test_platform_exports_what_team_stacks_need(preview, stack):
    outputs = plain(preview(stack).outputs)
    assert set(outputs) == set(PLATFORM_OUTPUT_KEYS)
    assert outputs["clusterName"] == f"aip-{stack}"
    assert all(p["taints"][0]["key"] == "nvidia.com/gpu" for p in outputs["gpuPools"])


@pytest.mark.parametrize("stack", PLATFORM_STACKS)
def test_platform_gpu_pools_are_nvidia_tainted_and_hardened(preview, stack):
    result = preview(stack)
    gpu_groups = [r for r in result.of_type("aws:eks/nodeGroup:NodeGroup")
                  if r.inputs["labels"].get("ai-platform.io/accelerator") == "nvidia"]
    node_pools = result.of_type("kubernetes:karpenter.sh/v1:NodePool")
    assert len(gpu_groups) + len(node_pools) == len(plain(result.outputs)["gpuPools"])
    for group in gpu_groups:
        assert group.inputs["amiType"] == "AL2023_x86_64_NVIDIA"
        assert {"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"} in group.inputs["taints"]
        assert all(gpu_family(t) for t in group.inputs["instanceTypes"])
    for pool in node_pools:
        template = pool.inputs["spec"]["template"]
        assert template["metadata"]["labels"]["ai-platform.io/accelerator"] == "nvidia"
        assert {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"} in template["spec"]["taints"]
        [types] = [r["values"] for r in template["spec"]["requirements"]
                   if r["key"] == "node.kubernetes.io/instance-type"]
        assert all(gpu_family(t) for t in types)
    for node_class in result.of_type("kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"):
        assert node_class.inputs["spec"]["metadataOptions"]["httpTokens"] == "required"
        assert all(m["ebs"]["encrypted"] is True for m in node_class.inputs["spec"]["blockDeviceMappings"])
    for template in result.of_type("aws:ec2/launchTemplate:LaunchTemplate"):
        assert template.inputs["metadataOptions"]["httpTokens"] == "required"
        assert template.inputs["blockDeviceMappings"][0]["ebs"]["encrypted"] == "true"


@pytest.mark.parametrize("stack", PLATFORM_STACKS)
def test_platform_keys_rotate_and_cluster_is_private(preview, stack):
    result = preview(stack)
    keys = result.of_type("aws:kms/key:Key")
    # One key per purpose, and where Karpenter runs one more for its interruption queue alone; one per replica where
    # the stack replicates; a recovery stack's models and archive keys are the replicas' (of the stack it restores).
    karpenter = [k for k in keys if "ai-platform:compute:Karpenter$" in k.parent]
    recovery = plain(result.outputs)["recovery"]
    restored = 2 if "restoredFrom" in recovery else 0
    assert len(keys) - len(karpenter) == len(KEY_PURPOSES) - restored + len(recovery.get("replicas", {}))
    assert all(k.inputs["enableKeyRotation"] for k in keys)
    assert len(karpenter) == (1 if result.of_type("kubernetes:karpenter.sh/v1:NodePool") else 0)
    cluster = only(result, "aws:eks/cluster:Cluster").inputs
    assert cluster["vpcConfig"]["endpointPublicAccess"] is False
    assert cluster["encryptionConfig"]["resources"] == ["secrets"]


def test_prod_has_a_nat_gateway_per_az_and_protected_buckets(preview):
    result = preview("prod")
    assert len(result.of_type("aws:ec2/natGateway:NatGateway")) == 3
    assert all(b.options["protect"] for b in result.of_type("aws:s3/bucket:Bucket"))


# What a team stack may create: what a team decides (models, canaries, PodMonitors, autoscaling), nothing that
# guards it.
TEAM_TYPES = {"pulumi:pulumi:StackReference", "pulumi:providers:kubernetes",
              "ai-platform:serving:ModelService", "aws:s3/bucketObjectv2:BucketObjectv2",
              "kubernetes:serving.kserve.io/v1beta1:InferenceService", "ai-platform:team:TeamMonitoring",
              "kubernetes:monitoring.coreos.com/v1:PodMonitor", "kubernetes:policy/v1:PodDisruptionBudget",
              "kubernetes:keda.sh/v1alpha1:ScaledObject"}


@pytest.mark.parametrize("stack", TEAM_STACKS)
def test_team_stack_touches_only_its_own_resources(preview, stack):
    team = stack.split("-")[0]
    result = preview(stack)
    assert {r.type for r in result.resources} <= TEAM_TYPES
    for record in result.resources:
        if record.type.startswith("kubernetes:"):
            assert record.inputs["metadata"]["namespace"] == team
        elif record.type == "pulumi:pulumi:StackReference":
            assert record.options["read"] is True
        elif record.type == "aws:s3/bucketObjectv2:BucketObjectv2":
            assert record.inputs["key"].startswith(f"teams/{team}/")


@pytest.mark.parametrize("stack", TEAM_STACKS)
def test_the_platform_onboards_each_team_stack(preview, stack):
    team, environment = stack.split("-")
    platform = preview(environment)
    namespaces = [r.inputs["metadata"]["name"] for r in platform.of_type("kubernetes:core/v1:Namespace")]
    assert team in namespaces
    quotas = {r.inputs["metadata"]["namespace"] for r in platform.of_type("kubernetes:core/v1:ResourceQuota")}
    assert team in quotas
    reader = next(r for r in platform.of_type("aws:iam/role:Role") if r.name.endswith(f"team-{team}-model-reader"))
    trust = policy_of(reader, "assumeRolePolicy")
    subject = next(iter(trust["Statement"][0]["Condition"]["StringEquals"].values()))
    assert subject == f"system:serviceaccount:{team}:model-serving"
    onboarded = plain(platform.outputs)["teams"][team]
    assert plain(preview(stack).outputs)["servingRoleArn"] == onboarded["servingRoleArn"]


@pytest.mark.parametrize("stack", TEAM_STACKS)
def test_team_stack_reads_the_previewed_platform(preview, stack):
    environment = stack.split("-")[1]
    outputs = plain(preview(stack).outputs)
    platform = plain(preview(environment).outputs)
    assert outputs["clusterName"] == platform["clusterName"]
    assert outputs["modelPrefix"] == f"s3://{platform['modelStoreBucket']}/teams/{stack.split('-')[0]}/"


def test_document_is_json_serialisable(preview):
    from infra.preview.render import to_document

    json.dumps(to_document(preview("dev")))


def test_team_models_are_uploaded_and_served_on_their_gpu_pool(preview):
    result = preview("vision-prod")
    isvc = only(result, "kubernetes:serving.kserve.io/v1beta1:InferenceService").inputs
    predictor = isvc["spec"]["predictor"]
    assert predictor["model"]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert predictor["nodeSelector"] == {"ai-platform.io/gpu-pool": "inference-l40s"}
    assert {"key": "nvidia.com/gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"} \
        in predictor["tolerations"]
    assert predictor["serviceAccountName"] == "model-serving"
    uploads = result.of_type("aws:s3/bucketObjectv2:BucketObjectv2")
    prefix = predictor["model"]["storageUri"].split("/", 3)[3]
    assert sorted(u.inputs["key"].removeprefix(prefix) for u in uploads) == ["config/config.properties",
                                                                             "model-store/digits.mar"]


def test_dedicated_pool_is_used_by_its_team(preview):
    predictor = only(preview("search-prod"), "kubernetes:serving.kserve.io/v1beta1:InferenceService").inputs[
        "spec"]["predictor"]
    assert predictor["nodeSelector"] == {"ai-platform.io/gpu-pool": "search-h100"}
    assert {"key": "ai-platform.io/dedicated", "operator": "Equal", "value": "search", "effect": "NoSchedule"} \
        in predictor["tolerations"]
