"""Pure decision functions, tested without mocks."""

from __future__ import annotations

import ipaddress

import pytest

from infra import gpu_catalog, iam_policies
from infra.components.block_storage import storage_class_parameters
from infra.components.cluster import vpc_config
from infra.components.gpu_node_pool import gpu_labels, gpu_taints, pool_contract, tolerations_for
from infra.components.model_store import deletion_options, lifecycle_rules
from infra.components.network import nat_index, plan_subnets
from infra.components.node_launch_template import metadata_options, root_volume
from infra.components.nvidia_device_plugin import device_plugin_values
from infra.components.team_workspace import model_prefix, namespace_labels
from infra.config import ClusterConfig, GpuPoolConfig, ModelStoreConfig
from infra.kubeconfig import eks_kubeconfig
from infra.tagging import is_taggable, k8s_labels


@pytest.mark.parametrize(("cidr", "azs"), [("10.64.0.0/16", 2), ("10.64.0.0/16", 3), ("10.0.0.0/20", 3),
                                            ("172.16.0.0/16", 6)])
def test_subnets_fit_the_vpc_without_overlap(cidr, azs):
    plans = plan_subnets(cidr, azs)
    vpc = ipaddress.ip_network(cidr)
    blocks = [ipaddress.ip_network(c) for p in plans for c in (p.public, p.private)]
    assert len(plans) == azs
    assert all(b.subnet_of(vpc) for b in blocks)
    assert not any(a.overlaps(b) for i, a in enumerate(blocks) for b in blocks[i + 1:])
    assert all(ipaddress.ip_network(p.private).num_addresses > ipaddress.ip_network(p.public).num_addresses
               for p in plans)


@pytest.mark.parametrize(("strategy", "expected"), [("single", [0, 0, 0]), ("perAz", [0, 1, 2])])
def test_nat_gateway_per_az_or_single(strategy, expected):
    assert [nat_index(i, strategy) for i in range(3)] == expected


def pool(**kw) -> GpuPoolConfig:
    return GpuPoolConfig.model_validate({"name": "l4", "instanceTypes": ["g6.xlarge"], "maxSize": 2, **kw})


@pytest.mark.parametrize(("instance_type", "gpu"), [("g5.xlarge", "nvidia-a10g"), ("g6.2xlarge", "nvidia-l4"),
                                                    ("g6e.4xlarge", "nvidia-l40s"), ("p5.48xlarge", "nvidia-h100"),
                                                    ("p4d.24xlarge", "nvidia-a100"), ("m5.large", None),
                                                    ("g6", None)])
def test_gpu_catalog(instance_type, gpu):
    family = gpu_catalog.gpu_family(instance_type)
    assert (family.gpu if family else None) == gpu


def test_every_gpu_pool_is_tainted_no_schedule():
    assert gpu_taints(pool()) == [{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}]


def test_dedicated_pool_adds_team_taint_and_label():
    dedicated = pool(dedicatedTeam="search")
    assert gpu_taints(dedicated)[1] == {"key": "ai-platform.io/dedicated", "value": "search", "effect": "NO_SCHEDULE"}
    assert gpu_labels(dedicated)["ai-platform.io/dedicated"] == "search"


def test_labels_name_accelerator_gpu_and_pool():
    assert gpu_labels(pool(capacityType="SPOT")) == {
        "ai-platform.io/accelerator": "nvidia", "ai-platform.io/gpu-type": "nvidia-l4",
        "ai-platform.io/gpu-pool": "l4", "ai-platform.io/capacity-type": "spot",
        "k8s.amazonaws.com/accelerator": "nvidia-l4", "ai-platform.io/gpu-sharing": "none",
        "ai-platform.io/gpu-slices": "1", "nvidia.com/device-plugin.config": "l4"}


def test_gpu_nodes_carry_the_label_the_cluster_autoscaler_waits_on():
    # Without it the autoscaler counts a GPU node whose device plugin has not started as ready without GPUs,
    # and launches another one.
    assert gpu_labels(pool())["k8s.amazonaws.com/accelerator"] == "nvidia-l4"


def test_tolerations_match_taints_exactly():
    taints = gpu_taints(pool(dedicatedTeam="search"))
    assert tolerations_for(taints) == [
        {"key": "nvidia.com/gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"},
        {"key": "ai-platform.io/dedicated", "operator": "Equal", "value": "search", "effect": "NoSchedule"}]


def test_pool_contract_tells_teams_how_to_schedule():
    contract = pool_contract(pool())
    assert contract["nodeSelector"] == {"ai-platform.io/gpu-pool": "l4"}
    assert contract["tolerations"][0]["key"] == "nvidia.com/gpu"


def test_device_plugin_runs_on_every_gpu_node_only():
    values = device_plugin_values()
    keys = {t["key"] for t in values["tolerations"]}
    assert {"nvidia.com/gpu", "ai-platform.io/dedicated"} <= keys
    term = values["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert term == [{"matchExpressions": [{"key": "ai-platform.io/accelerator", "operator": "In",
                                           "values": ["nvidia"]}]}]
    assert values["securityContext"]["allowPrivilegeEscalation"] is False


def test_private_endpoint_by_default():
    config = vpc_config(ClusterConfig(), ["subnet-1"])
    assert config["endpoint_private_access"] is True and config["endpoint_public_access"] is False
    assert "public_access_cidrs" not in config


def test_public_endpoint_only_to_the_allowlist():
    cluster = ClusterConfig.model_validate({"endpointPublicAccess": True, "publicAccessCidrs": ["203.0.113.0/24"]})
    assert vpc_config(cluster, [])["public_access_cidrs"] == ["203.0.113.0/24"]


def test_launch_template_requires_imdsv2_and_blocks_pods():
    assert metadata_options()["http_tokens"] == "required"
    assert metadata_options()["http_put_response_hop_limit"] == 1


def test_root_volume_is_encrypted_gp3_with_customer_key():
    ebs = root_volume(100, "arn:key")["ebs"]
    assert ebs == {"volume_size": 100, "volume_type": "gp3", "encrypted": "true", "kms_key_id": "arn:key",
                   "delete_on_termination": "true"}


def test_storage_class_encrypts_with_customer_key():
    assert storage_class_parameters("arn:key") == {"type": "gp3", "encrypted": "true", "kmsKeyId": "arn:key",
                                                   "csi.storage.k8s.io/fstype": "ext4"}


@pytest.mark.parametrize(("mode", "protect", "retain"), [("protect", True, True), ("retain", False, True),
                                                         ("none", False, False)])
def test_bucket_deletion_protection(mode, protect, retain):
    opts = deletion_options(mode)
    assert (opts.protect, opts.retain_on_delete) == (protect, retain)


def test_noncurrent_versions_expire():
    rule = lifecycle_rules(ModelStoreConfig(noncurrent_version_expiration_days=14))[0]
    assert rule["noncurrent_version_expiration"] == {"noncurrent_days": 14} and rule["status"] == "Enabled"


def test_irsa_trust_is_bound_to_one_service_account():
    policy = iam_policies.irsa_trust_policy("arn:oidc", "https://oidc.eks.x/id/ABC", "vision", "model-serving")
    condition = policy["Statement"][0]["Condition"]["StringEquals"]
    assert condition == {"oidc.eks.x/id/ABC:sub": "system:serviceaccount:vision:model-serving",
                         "oidc.eks.x/id/ABC:aud": "sts.amazonaws.com"}


def test_prefix_read_policy_is_read_only_and_scoped():
    policy = iam_policies.prefix_read_policy("arn:aws:s3:::models", "teams/vision/", "arn:key", "us-east-1")
    actions = [a for s in policy["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])]
    assert set(actions) == {"s3:ListBucket", "s3:GetObject", "s3:GetObjectVersion", "kms:Decrypt"}
    head = next(s for s in policy["Statement"] if s["Sid"] == "HeadModelBucket")
    assert head["Condition"] == {"Null": {"s3:prefix": "true"}} and head["Resource"] == "arn:aws:s3:::models"
    resources = {s["Sid"]: s["Resource"] for s in policy["Statement"]}
    assert resources["ReadTeamObjects"] == "arn:aws:s3:::models/teams/vision/*"
    assert policy["Statement"][0]["Condition"]["StringLike"]["s3:prefix"] == ["teams/vision/", "teams/vision/*"]


def test_tls_only_statement_denies_plain_http():
    statement = iam_policies.tls_only_statement("arn:aws:s3:::b")
    assert statement["Effect"] == "Deny" and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_key_policy_grants_autoscaling_only_when_asked():
    plain = iam_policies.kms_key_policy("111122223333", "aws", "us-east-1")
    volumes = iam_policies.kms_key_policy("111122223333", "aws", "us-east-1", grants_for=("autoscaling",))
    assert len(plain["Statement"]) == 1
    assert "AWSServiceRoleForAutoScaling" in volumes["Statement"][1]["Principal"]["AWS"]


def test_kubeconfig_holds_no_credentials():
    config = eks_kubeconfig("aip-dev", "https://x", "Q0E=", "us-east-1")
    user = config["users"][0]["user"]
    assert set(user) == {"exec"} and user["exec"]["command"] == "aws"


def test_team_prefix_and_restricted_pod_security():
    assert model_prefix("vision") == "teams/vision/"
    assert namespace_labels("vision")["pod-security.kubernetes.io/enforce"] == "restricted"


def test_labels_mirror_tags_and_are_label_safe():
    labels = k8s_labels({"team": "vision", "cost-center": "CC 12/34"})
    assert labels["ai-platform.io/team"] == "vision"
    assert labels["ai-platform.io/cost-center"] == "CC-12-34"


def test_only_resources_with_a_tag_map_are_taggable():
    import pulumi_aws as aws

    assert is_taggable(aws.s3.Bucket) and is_taggable(aws.eks.NodeGroup)
    assert not is_taggable(aws.iam.RolePolicyAttachment)
    assert not is_taggable(aws.autoscaling.Group)


def test_team_namespace_denies_ingress_except_callers_and_prometheus():
    from infra.components.team_workspace import network_policies

    policies = network_policies()
    assert policies["default-deny"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    assert policies["allow-dns"]["egress"][0]["ports"] == [{"protocol": "UDP", "port": 53},
                                                          {"protocol": "TCP", "port": 53}]
    inference = policies["allow-inference"]["ingress"][0]
    # REST and gRPC v2 (kserve predictors with protocol grpc-v2) from the same callers, in and out alike.
    assert inference["ports"] == [{"protocol": "TCP", "port": 8080}, {"protocol": "TCP", "port": 8081}]
    assert policies["allow-inference-egress"]["egress"][0]["ports"] == inference["ports"]
    scrape = policies["allow-metrics-scrape"]["ingress"][0]
    assert scrape["from"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]
