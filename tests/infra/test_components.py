"""Each component under fresh SDK mocks: the security-relevant inputs it registers."""

from __future__ import annotations

import json

import pulumi
import pulumi_kubernetes as k8s
import pytest

from infra.aws_context import AwsContext
from infra.components.block_storage import BlockStorage, BlockStorageArgs
from infra.components.cluster import Cluster, ClusterArgs
from infra.components.gpu_node_pool import GpuNodePool, GpuNodePoolArgs
from infra.components.kms_key import CustomerKey, CustomerKeyArgs
from infra.components.model_store import ModelStore, ModelStoreArgs
from infra.components.network import Network, NetworkArgs
from infra.components.nvidia_device_plugin import NvidiaDevicePlugin, NvidiaDevicePluginArgs
from infra.components.team_workspace import TeamWorkspace, TeamWorkspaceArgs
from infra.config import ClusterConfig, GpuPoolConfig, ModelStoreConfig, NetworkConfig
from infra.config.serving import QuotaConfig
from infra.config.teams import TeamEntry
from infra.tagging import register_tagging
from infra.versions import EBS_CSI_DRIVER, NVIDIA_DEVICE_PLUGIN
from tests.conftest import only, policy_of

KEY = "arn:aws:kms:us-east-1:123456789012:key/test"
TAGS = {"team": "platform", "environment": "dev", "cost-center": "ml-platform", "data-classification": "internal",
        "managed-by": "pulumi"}


def ctx() -> AwsContext:
    return AwsContext.lookup("us-east-1")


def test_customer_key_rotates_and_has_an_alias(run_component):
    result = run_component(lambda: CustomerKey("k", CustomerKeyArgs(
        alias="aip-dev-volumes", description="volumes", aws=ctx(), grants_for=("autoscaling",))))
    key = only(result, "aws:kms/key:Key")
    assert key.inputs["enableKeyRotation"] is True and key.inputs["deletionWindowInDays"] == 30
    sids = [s["Sid"] for s in policy_of(key)["Statement"]]
    assert sids == ["AccountAdministersKeyThroughIam", "AutoScalingUsesKeyForVolumes", "AutoScalingAttachesVolumes"]
    assert only(result, "aws:kms/alias:Alias").inputs["name"] == "alias/aip-dev-volumes"


@pytest.mark.parametrize(("strategy", "nats"), [("single", 1), ("perAz", 3)])
def test_network_spreads_private_subnets_with_nat(run_component, strategy, nats):
    config = NetworkConfig(availability_zones=3, nat_gateways=strategy)
    result = run_component(lambda: Network("net", NetworkArgs(config, "aip-dev", KEY, 30, ctx())))
    subnets = result.of_type("aws:ec2/subnet:Subnet")
    private = [s for s in subnets if "kubernetes.io/role/internal-elb" in s.inputs["tags"]]
    assert len(subnets) == 6 and len(private) == 3
    assert {s.inputs["availabilityZone"] for s in private} == {"us-east-1a", "us-east-1b", "us-east-1c"}
    assert all(s.inputs.get("mapPublicIpOnLaunch") is not True for s in subnets)
    assert len(result.of_type("aws:ec2/natGateway:NatGateway")) == nats
    assert only(result, "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup").inputs["ingress"] == []
    flow = only(result, "aws:ec2/flowLog:FlowLog")
    assert flow.inputs["trafficType"] == "ALL"
    assert only(result, "aws:cloudwatch/logGroup:LogGroup").inputs["kmsKeyId"] == KEY


def test_network_routes_are_resources_of_their_own_and_s3_bypasses_nat(run_component):
    config = NetworkConfig.model_validate({"availabilityZones": 2, "natGateways": "perAz", "routes": [
        {"cidr": "10.100.0.0/16", "transitGatewayId": "tgw-0a1b2c3d4e5f60718"},
        {"cidr": "172.20.0.0/22", "vpnGatewayId": "vgw-01234567"}]})
    result = run_component(lambda: Network("net", NetworkArgs(config, "aip-dev", KEY, 30, ctx())))
    # Inline routes would make every update overwrite routes that others add to these tables.
    tables = {r.name: r for r in result.of_type("aws:ec2/routeTable:RouteTable")}
    assert set(tables) == {"net-public", "net-private-0", "net-private-1"}
    assert all(not t.inputs.get("routes") for t in tables.values())
    routes = {r.name: r.inputs for r in result.of_type("aws:ec2/route:Route")}
    assert set(routes) == {"net-public-default", "net-private-0-default", "net-private-1-default",
                           "net-private-0-to-10.100.0.0-16", "net-private-1-to-10.100.0.0-16",
                           "net-private-0-to-172.20.0.0-22", "net-private-1-to-172.20.0.0-22"}
    assert routes["net-public-default"]["gatewayId"].startswith("igw-")
    assert routes["net-private-1-default"]["natGatewayId"].startswith("nat-")
    assert routes["net-private-1-to-10.100.0.0-16"]["transitGatewayId"] == "tgw-0a1b2c3d4e5f60718"
    assert routes["net-private-0-to-172.20.0.0-22"]["gatewayId"] == "vgw-01234567"
    private_ids = {r["routeTableId"] for n, r in routes.items() if n.startswith("net-private-")}
    assert len(private_ids) == 2 and routes["net-public-default"]["routeTableId"] not in private_ids
    endpoint = only(result, "aws:ec2/vpcEndpoint:VpcEndpoint").inputs
    assert (endpoint["serviceName"], endpoint["vpcEndpointType"]) == ("com.amazonaws.us-east-1.s3", "Gateway")
    assert sorted(endpoint["routeTableIds"]) == sorted(private_ids)
    trust = policy_of(only(result, "aws:iam/role:Role"), "assumeRolePolicy")["Statement"]
    assert trust == [{"Effect": "Allow", "Principal": {"Service": "vpc-flow-logs.amazonaws.com"},
                      "Action": "sts:AssumeRole",
                      "Condition": {"StringEquals": {"aws:SourceAccount": "123456789012"},
                                    "ArnLike": {"aws:SourceArn": "arn:aws:ec2:us-east-1:123456789012:vpc-flow-log/*"}}}]


def test_network_attaches_the_vpc_to_each_gateway_its_routes_use(run_component):
    tgw, vgw = "tgw-0a1b2c3d4e5f60718", "vgw-01234567"
    config = NetworkConfig.model_validate({"availabilityZones": 3, "routes": [
        {"cidr": "10.100.0.0/16", "transitGatewayId": tgw}, {"cidr": "172.20.0.0/22", "transitGatewayId": tgw},
        {"cidr": "192.168.0.0/24", "vpnGatewayId": vgw}]})
    result = run_component(lambda: Network("net", NetworkArgs(config, "aip-dev", KEY, 30, ctx())))
    (vpc,) = {s.inputs["vpcId"] for s in result.of_type("aws:ec2/subnet:Subnet")}
    associations = result.of_type("aws:ec2/routeTableAssociation:RouteTableAssociation")
    private_subnets = [a.inputs["subnetId"] for a in associations if a.name.startswith("net-private-")]
    # One attachment per gateway however many routes use it; a transit gateway one gets a subnet in every AZ.
    attachment = only(result, "aws:ec2transitgateway/vpcAttachment:VpcAttachment")
    assert (attachment.inputs["transitGatewayId"], attachment.inputs["vpcId"], sorted(attachment.inputs["subnetIds"]),
            attachment.inputs["dnsSupport"], attachment.inputs["tags"]) == \
        (tgw, vpc, sorted(private_subnets), "enable", {"Name": f"net-{tgw}"})
    assert len(private_subnets) == 3
    vpn = only(result, "aws:ec2/vpnGatewayAttachment:VpnGatewayAttachment")
    assert (vpn.inputs["vpnGatewayId"], vpn.inputs["vpcId"]) == (vgw, vpc)
    # EC2 refuses a route to a gateway the VPC is not attached to yet: every route waits for its attachment.
    routes = [r for r in result.of_type("aws:ec2/route:Route") if "-to-" in r.name]
    assert len(routes) == 9
    for route in routes:
        needed = attachment if route.inputs.get("transitGatewayId") == tgw else vpn
        assert needed.urn in route.options["dependsOn"], route.name


def test_network_brings_your_own_vpc_without_creating_one(run_component):
    config = NetworkConfig.model_validate({"existingVpcId": "vpc-0123456789abcdef0",
                                           "existingPrivateSubnetIds": ["subnet-01234567", "subnet-89abcdef"]})
    result = run_component(lambda: Network("net", NetworkArgs(config, "aip-dev", KEY, 30, ctx())))
    assert [r.type for r in result.resources] == ["ai-platform:network:Network"]


def cluster_program(config: ClusterConfig):
    def build():
        Cluster("c", ClusterArgs(config=config, cluster_name="aip-dev", subnet_ids=["subnet-1", "subnet-2"],
                                 secrets_key_arn=KEY, logs_key_arn=KEY, volume_key_arn=KEY, aws=ctx()))
    return build


def test_cluster_is_private_encrypted_and_audited(run_component):
    result = run_component(cluster_program(ClusterConfig()))
    eks = only(result, "aws:eks/cluster:Cluster").inputs
    assert eks["vpcConfig"]["endpointPrivateAccess"] is True
    assert eks["vpcConfig"]["endpointPublicAccess"] is False
    assert "publicAccessCidrs" not in eks["vpcConfig"]
    assert eks["encryptionConfig"] == {"provider": {"keyArn": KEY}, "resources": ["secrets"]}
    assert "audit" in eks["enabledClusterLogTypes"] and len(eks["enabledClusterLogTypes"]) == 5
    assert eks["accessConfig"]["authenticationMode"] == "API"
    logs = only(result, "aws:cloudwatch/logGroup:LogGroup").inputs
    assert logs["name"] == "/aws/eks/aip-dev/cluster" and logs["kmsKeyId"] == KEY
    oidc = only(result, "aws:iam/openIdConnectProvider:OpenIdConnectProvider").inputs
    assert oidc["clientIdLists"] == ["sts.amazonaws.com"] and oidc["url"].startswith("https://oidc.eks.")
    system = only(result, "aws:eks/nodeGroup:NodeGroup").inputs
    assert system["amiType"] == "AL2023_x86_64_STANDARD" and system["capacityType"] == "ON_DEMAND"
    provider = only(result, "pulumi:providers:kubernetes").inputs
    assert json.loads(provider["kubeconfig"])["clusters"][0]["name"] == "aip-dev"


def test_cluster_public_endpoint_only_to_allowlist(run_component):
    config = ClusterConfig.model_validate({"endpointPublicAccess": True, "publicAccessCidrs": ["203.0.113.0/24"]})
    eks = only(run_component(cluster_program(config)), "aws:eks/cluster:Cluster").inputs
    assert eks["vpcConfig"]["publicAccessCidrs"] == ["203.0.113.0/24"]


def gpu_pool_program(pool: GpuPoolConfig):
    def build():
        GpuNodePool("gpu", GpuNodePoolArgs(pool=pool, cluster_name="aip-dev", node_role_arn="arn:role",
                                           subnet_ids=["subnet-1"], volume_key_arn=KEY))
    return build


def test_gpu_pool_uses_nvidia_ami_taint_and_hardened_template(run_component):
    pool = GpuPoolConfig.model_validate({"name": "l4", "instanceTypes": ["g6.xlarge"], "maxSize": 4,
                                         "capacityType": "SPOT", "dedicatedTeam": "vision"})
    result = run_component(gpu_pool_program(pool))
    group = only(result, "aws:eks/nodeGroup:NodeGroup")
    assert group.inputs["amiType"] == "AL2023_x86_64_NVIDIA"
    assert group.inputs["capacityType"] == "SPOT"
    assert group.inputs["scalingConfig"] == {"minSize": 0, "maxSize": 4, "desiredSize": 0}
    assert {"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"} in group.inputs["taints"]
    assert {"key": "ai-platform.io/dedicated", "value": "vision", "effect": "NO_SCHEDULE"} in group.inputs["taints"]
    assert group.inputs["labels"]["ai-platform.io/gpu-type"] == "nvidia-l4"
    assert "scalingConfig.desiredSize" in group.options["ignoreChanges"]
    template = only(result, "aws:ec2/launchTemplate:LaunchTemplate").inputs
    assert template["metadataOptions"]["httpTokens"] == "required"
    ebs = template["blockDeviceMappings"][0]["ebs"]
    assert (ebs["encrypted"], ebs["volumeType"], ebs["kmsKeyId"]) == ("true", "gp3", KEY)


def test_device_plugin_is_a_pinned_release_on_the_cluster_provider(run_component):
    def build():
        provider = k8s.Provider("k8s", kubeconfig="{}")
        NvidiaDevicePlugin("dp", NvidiaDevicePluginArgs(provider=provider))

    result = run_component(build)
    release = only(result, "kubernetes:helm.sh/v3:Release")
    assert release.inputs["chart"] == NVIDIA_DEVICE_PLUGIN.chart
    assert release.inputs["version"] == NVIDIA_DEVICE_PLUGIN.version
    assert release.inputs["repositoryOpts"] == {"repo": NVIDIA_DEVICE_PLUGIN.repository}
    assert release.inputs["namespace"] == "kube-system"
    assert "pulumi:providers:kubernetes::k8s::" in release.options["provider"]


def test_block_storage_has_irsa_driver_and_encrypted_default_class(run_component):
    def build():
        provider = k8s.Provider("k8s", kubeconfig="{}")
        BlockStorage("bs", BlockStorageArgs(cluster_name="aip-dev", oidc_provider_arn="arn:oidc",
                                            oidc_issuer_url="https://oidc.eks.us-east-1.amazonaws.com/id/X",
                                            volume_key_arn=KEY, provider=provider, aws=ctx()))

    result = run_component(build)
    addon = only(result, "aws:eks/addon:Addon").inputs
    assert (addon["addonName"], addon["addonVersion"]) == (EBS_CSI_DRIVER.name, EBS_CSI_DRIVER.version)
    trust = policy_of(only(result, "aws:iam/role:Role"), "assumeRolePolicy")
    assert trust["Statement"][0]["Condition"]["StringEquals"][
        "oidc.eks.us-east-1.amazonaws.com/id/X:sub"] == "system:serviceaccount:kube-system:ebs-csi-controller-sa"
    storage = only(result, "kubernetes:storage.k8s.io/v1:StorageClass").inputs
    assert storage["parameters"]["encrypted"] == "true" and storage["parameters"]["kmsKeyId"] == KEY
    assert storage["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"


@pytest.mark.parametrize(("mode", "protect", "retain"), [("protect", True, True), ("retain", False, True)])
def test_model_store_is_encrypted_versioned_private_and_logged(run_component, mode, protect, retain):
    config = ModelStoreConfig(deletion_protection=mode)
    result = run_component(lambda: ModelStore("ms", ModelStoreArgs(config=config, kms_key_arn=KEY, aws=ctx())))
    buckets = {r.name: r for r in result.of_type("aws:s3/bucket:Bucket")}
    assert set(buckets) == {"ms-models", "ms-access-logs"}
    assert all((b.options["protect"], b.options["retainOnDelete"]) == (protect, retain) for b in buckets.values())
    sse = {r.name: r.inputs["rules"][0] for r in
           result.of_type("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")}
    assert sse["ms-models"] == {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms",
                                                                       "kmsMasterKeyId": KEY},
                                "bucketKeyEnabled": True}
    assert sse["ms-access-logs"]["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "AES256"}
    for block in result.of_type("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"):
        assert all(block.inputs[k] is True for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls",
                                                     "restrictPublicBuckets"))
    assert all(v.inputs["versioningConfiguration"]["status"] == "Enabled"
               for v in result.of_type("aws:s3/bucketVersioning:BucketVersioning"))
    policies = {r.name: policy_of(r) for r in result.of_type("aws:s3/bucketPolicy:BucketPolicy")}
    assert all(p["Statement"][0]["Sid"] == "DenyInsecureTransport" for p in policies.values())
    logging = only(result, "aws:s3/bucketLogging:BucketLogging").inputs
    assert logging["targetPrefix"] == "models/"
    lifecycle = {r.name: r.inputs["rules"][0] for r in
                 result.of_type("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")}
    assert lifecycle["ms-models"]["noncurrentVersionExpiration"] == {"noncurrentDays": 90}


BOUNDARY = "arn:aws:iam::123456789012:policy/boundary"
CI_ROLE = "arn:aws:iam::123456789012:role/vision-ci"


def onboard_vision():
    provider = k8s.Provider("k8s", kubeconfig="{}")
    entry = TeamEntry(name="vision", cost_center="vision-ml", ci_principal_arn=CI_ROLE,
                      quota=QuotaConfig(gpu=6))
    TeamWorkspace("vision", TeamWorkspaceArgs(
        team=entry, region="us-east-1", cluster_name="aip-dev",
        oidc_provider_arn="arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/X",
        oidc_issuer_url="https://oidc.eks.us-east-1.amazonaws.com/id/X", bucket_arn="arn:aws:s3:::models",
        kms_key_arn=KEY, boundary_arn=BOUNDARY, provider=provider))


def test_team_workspace_is_restricted_and_reads_only_its_prefix(run_component):
    result = run_component(onboard_vision)
    namespace = only(result, "kubernetes:core/v1:Namespace").inputs["metadata"]
    assert namespace["name"] == "vision"
    assert namespace["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert only(result, "kubernetes:core/v1:ResourceQuota").inputs["spec"]["hard"]["requests.nvidia.com/gpu"] == "6"
    trust = policy_of(only(result, "aws:iam/role:Role"), "assumeRolePolicy")["Statement"][0]
    assert trust["Condition"]["StringEquals"]["oidc.eks.us-east-1.amazonaws.com/id/X:sub"] == \
        "system:serviceaccount:vision:model-serving"
    policy = policy_of(only(result, "aws:iam/rolePolicy:RolePolicy"))
    assert {s["Sid"]: s["Resource"] for s in policy["Statement"]}["ReadTeamObjects"] == \
        "arn:aws:s3:::models/teams/vision/*"
    assert only(result, "aws:iam/role:Role").inputs["permissionsBoundary"] == BOUNDARY
    account = only(result, "kubernetes:core/v1:ServiceAccount").inputs
    assert account["metadata"]["namespace"] == "vision"
    assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].startswith("arn:aws:iam::")
    assert account["automountServiceAccountToken"] is False


def test_what_the_platform_creates_for_a_team_is_owned_by_the_team(run_component):
    result = run_component(lambda: (register_tagging(TAGS), onboard_vision()))
    for record in result.resources:
        if record.type.startswith("kubernetes:"):
            labels = record.inputs["metadata"]["labels"]
            assert labels["ai-platform.io/team"] == "vision", record.urn
            assert labels["ai-platform.io/cost-center"] == "vision-ml", record.urn
            assert labels["ai-platform.io/environment"] == "dev", record.urn
        elif record.type in ("aws:iam/role:Role", "aws:iam/policy:Policy", "aws:eks/accessEntry:AccessEntry"):
            assert record.inputs["tags"]["team"] == "vision", record.urn
            assert record.inputs["tags"]["cost-center"] == "vision-ml", record.urn


def test_team_ci_may_deploy_models_into_its_namespace_only(run_component):
    result = run_component(onboard_vision)
    entry = only(result, "aws:eks/accessEntry:AccessEntry").inputs
    assert entry["principalArn"] == CI_ROLE and entry["type"] == "STANDARD"
    # No EKS access policy: those cover built-in kinds only; the Role below is the whole grant.
    assert result.of_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation") == []
    binding = only(result, "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding").inputs
    assert binding["subjects"] == [{"kind": "Group", "name": entry["kubernetesGroups"][0],
                                    "apiGroup": "rbac.authorization.k8s.io"}]
    assert binding["metadata"]["namespace"] == "vision"
    role = only(result, "kubernetes:rbac.authorization.k8s.io/v1:Role").inputs
    writable = {(g, r) for rule in role["rules"] if "create" in rule["verbs"]
                for g in rule["apiGroups"] for r in rule["resources"]}
    assert writable == {("serving.kserve.io", "inferenceservices"), ("monitoring.coreos.com", "podmonitors"),
                        ("policy", "poddisruptionbudgets"), ("keda.sh", "scaledobjects")}
    deploy = policy_of(only(result, "aws:iam/policy:Policy"))
    writes = next(s for s in deploy["Statement"] if s["Sid"] == "WriteTeamModels")
    assert writes["Resource"] == "arn:aws:s3:::models/teams/vision/*"


def test_mocks_are_installed_per_test(run_component):
    first = run_component(lambda: pulumi.export("x", 1))
    second = run_component(lambda: CustomerKey("k", CustomerKeyArgs(alias="a", description="d", aws=ctx())))
    assert first.resources == [] and len(second.resources) == 3


def test_region_with_too_few_zones_fails_before_creating_anything(run_component):
    from infra.preview import ProgramError

    config = NetworkConfig(availability_zones=4)
    with pytest.raises(ProgramError) as caught:
        run_component(lambda: Network("net", NetworkArgs(config, "aip-dev", KEY, 30, ctx())), region="eu-west-3")
    assert str(caught.value.cause) == ("ai-platform:network.availabilityZones = 4: the region has only 3 usable "
                                       "availability zones (eu-west-3a, eu-west-3b, eu-west-3c)")
    assert [r.type for r in caught.value.resources] == ["ai-platform:network:Network"]


def test_private_endpoint_is_reachable_from_listed_networks_only(run_component):
    config = ClusterConfig.model_validate({"privateAccessCidrs": ["10.100.0.0/16"]})
    rule = only(run_component(cluster_program(config)), "aws:ec2/securityGroupRule:SecurityGroupRule").inputs
    assert (rule["type"], rule["fromPort"], rule["toPort"], rule["cidrBlocks"]) == ("ingress", 443, 443,
                                                                                    ["10.100.0.0/16"])


def test_retained_store_keeps_its_safeguards(run_component):
    config = ModelStoreConfig(deletion_protection="retain")
    result = run_component(lambda: ModelStore("ms", ModelStoreArgs(config=config, kms_key_arn=KEY, aws=ctx())))
    for record in result.resources:
        if record.type.startswith("aws:s3/"):
            assert record.options["retainOnDelete"] is True, record.type
    boundary = policy_of(only(result, "aws:iam/policy:Policy"))
    resources = {s["Sid"]: s["Resource"] for s in boundary["Statement"]}
    assert resources["ReadTeamObjects"].endswith("/teams/*")


def test_cluster_autoscaler_is_pinned_and_scoped_to_its_cluster(run_component):
    from infra.components.cluster_autoscaler import ClusterAutoscaler, ClusterAutoscalerArgs
    from infra.versions import CLUSTER_AUTOSCALER

    def build():
        provider = k8s.Provider("k8s", kubeconfig="{}")
        # Stands in for the metrics stack, which installs the ServiceMonitor CRD.
        metrics = k8s.core.v1.Namespace("metrics", opts=pulumi.ResourceOptions(provider=provider))
        ClusterAutoscaler("ca", ClusterAutoscalerArgs(
            cluster_name="aip-dev", cluster_version="1.34", oidc_provider_arn="arn:oidc",
            oidc_issuer_url="https://oidc.eks.us-east-1.amazonaws.com/id/X",
            provider=provider, aws=ctx(), monitoring=(metrics,)))

    result = run_component(build)
    record = only(result, "kubernetes:helm.sh/v3:Release")
    release = record.inputs
    assert (release["chart"], release["version"]) == (CLUSTER_AUTOSCALER.chart, CLUSTER_AUTOSCALER.version)
    assert release["values"]["image"]["tag"].startswith("v1.34.")
    assert release["values"]["autoDiscovery"] == {"clusterName": "aip-dev"}
    # Per-node-group metrics for the node pool alerts, scraped by a ServiceMonitor that alone waits for the
    # metrics stack (the autoscaler itself must not: the stack's pods may need it to find room).
    assert release["values"]["extraArgs"]["emit-per-nodegroup-metrics"] == "true"
    assert not any("metrics" in urn for urn in record.options.get("dependsOn", []))
    monitor = only(result, "kubernetes:monitoring.coreos.com/v1:ServiceMonitor")
    assert monitor.inputs["metadata"]["namespace"] == "kube-system"
    assert record.urn in monitor.options["dependsOn"]
    assert any(urn.endswith("::metrics") for urn in monitor.options["dependsOn"])
    resize = policy_of(only(result, "aws:iam/rolePolicy:RolePolicy"))["Statement"][1]
    assert resize["Condition"] == {"StringEquals": {"aws:ResourceTag/k8s.io/cluster-autoscaler/aip-dev": "owned"}}


def test_cni_runs_with_its_own_role_and_enforces_network_policies(run_component):
    from infra.versions import VPC_CNI

    result = run_component(cluster_program(ClusterConfig()))
    addons = {r.inputs["addonName"]: r.inputs for r in result.of_type("aws:eks/addon:Addon")}
    assert addons[VPC_CNI.name]["addonVersion"] == VPC_CNI.version
    assert json.loads(addons[VPC_CNI.name]["configurationValues"]) == {"enableNetworkPolicy": "true"}
    node_policies = [r.inputs["policyArn"] for r in result.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
                     if "-nodes-" in r.name]
    assert node_policies and not any(p.endswith("AmazonEKS_CNI_Policy") for p in node_policies)
