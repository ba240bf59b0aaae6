"""Karpenter as the GPU provisioner: node class and node pool specs, the capacity floor, the controller's IAM and
interruption queue, and what the platform stacks build with it."""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from infra.components.gpu_node_pool import CAPACITY_LABEL, POOL_LABEL, SHARING_LABEL, SLICES_LABEL, gpu_taints
from infra.components.karpenter import (
    CAPACITY_NAMESPACE,
    INTERRUPTION_EVENTS,
    PLACEHOLDER_PRIORITY_CLASS,
    controller_replicas,
    karpenter_values,
)
from infra.components.karpenter_node_pool import (
    NODE_CLASS_API,
    NODE_POOL_API,
    ec2_node_class_spec,
    mig_user_data,
    node_pool_spec,
    placeholder_deployment_spec,
)
from infra.config import GpuPoolConfig
from infra.graph_checks import run_deploy_checks
from infra.graph_checks.graph import ResourceGraph
from infra.graph_checks.identity import ACCESS_ENTRY, node_access_findings
from infra.iam_policies import interruption_queue_policy, karpenter_controller_policy, kms_key_policy
from infra.preview import Project, run_preview
from infra.versions import KARPENTER, KARPENTER_NODE_AMI, PAUSE
from tests.conftest import only, policy_of
from tests.crd_schemas import validate_custom_resource
from tests.graph_checks import conftest as graph_checks
from tests.graph_checks.conftest import record, result_of, seeded

# The deploy-check tests' fixtures: the shipped stacks' parsed configs and the pinned charts' upstream values.
stack_config = graph_checks.stack_config
charts_dir = graph_checks.charts_dir

K8S_VERSION = "1.34"
CLUSTER = "aip-test"
KEY = "arn:aws:kms:us-east-1:123456789012:key/volumes"
TAGS = {"team": "platform", "environment": "dev", "cost-center": "ml", "data-classification": "internal",
        "managed-by": "pulumi"}
RELEASE = "kubernetes:helm.sh/v3:Release"
NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
NODE_CLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
# Label domains a NodePool may not set (the CRD's CEL rules, which JSON Schema cannot express).
RESTRICTED_LABEL_DOMAINS = ("karpenter.sh", "karpenter.k8s.aws", "kubernetes.io", "k8s.io")


def pool(**kw: Any) -> GpuPoolConfig:
    return GpuPoolConfig.model_validate({"name": "l4", "provisioner": "karpenter", "instanceTypes": ["g6.xlarge",
                                                                                                   "g6.12xlarge"],
                                         "maxSize": 3, **kw})


def node_class(p: GpuPoolConfig, **kw: Any) -> dict[str, Any]:
    return ec2_node_class_spec(p, cluster_name=CLUSTER, node_role_name="aip-test-karpenter-nodes",
                               volume_key_arn=KEY, tags=TAGS, **kw)


def manifest(api_version: str, kind: str, spec: dict[str, Any], name: str = "l4") -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": kind, "metadata": {"name": name}, "spec": spec}


# -- EC2NodeClass ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("p", [
    pool(),
    pool(capacityTypes=["RESERVED", "ON_DEMAND"], capacityReservationIds=["cr-0123456789abcdef0"]),
    pool(instanceTypes=["p5.48xlarge"], sharing={"mode": "mig", "migProfile": "1g.10gb"}),
], ids=["plain", "reserved", "mig"])
def test_node_classes_are_valid_ec2_node_classes(p):
    validate_custom_resource(manifest(NODE_CLASS_API, "EC2NodeClass", node_class(p)))


def test_nodes_boot_the_pinned_al2023_release_with_imdsv2_and_an_encrypted_root_volume():
    spec = node_class(pool(rootVolumeGib=150))
    assert spec["amiSelectorTerms"] == [{"alias": KARPENTER_NODE_AMI.alias}]
    assert KARPENTER_NODE_AMI.alias.startswith("al2023@v2") and "latest" not in KARPENTER_NODE_AMI.alias
    assert spec["metadataOptions"] == {"httpEndpoint": "enabled", "httpProtocolIPv6": "disabled",
                                       "httpPutResponseHopLimit": 1, "httpTokens": "required"}
    assert spec["blockDeviceMappings"] == [{"deviceName": "/dev/xvda", "rootVolume": True, "ebs": {
        "volumeSize": "150Gi", "volumeType": "gp3", "encrypted": True, "kmsKeyID": KEY, "deleteOnTermination": True}}]
    assert spec["role"] == "aip-test-karpenter-nodes"
    assert spec["tags"] == TAGS
    assert "userData" not in spec and "capacityReservationSelectorTerms" not in spec


def test_subnets_by_discovery_tag_or_by_id_and_the_cluster_security_group_by_tag():
    assert node_class(pool())["subnetSelectorTerms"] == [{"tags": {"karpenter.sh/discovery": CLUSTER}}]
    assert node_class(pool(), subnet_ids=("subnet-0a", "subnet-0b"))["subnetSelectorTerms"] == [
        {"id": "subnet-0a"}, {"id": "subnet-0b"}]
    assert node_class(pool())["securityGroupSelectorTerms"] == [{"tags": {"karpenter.sh/discovery": CLUSTER}}]


def test_reserved_capacity_selects_the_reservations_by_id():
    spec = node_class(pool(capacityTypes=["RESERVED"], capacityReservationIds=["cr-0a", "cr-0b"]))
    assert spec["capacityReservationSelectorTerms"] == [{"id": "cr-0a"}, {"id": "cr-0b"}]


def test_mig_pools_partition_every_gpu_at_boot():
    p = pool(instanceTypes=["p5.48xlarge"], sharing={"mode": "mig", "migProfile": "3g.40gb"})
    script = node_class(p)["userData"]
    assert script == mig_user_data(p)
    lines = script.splitlines()
    assert lines[0] == "#!/bin/bash" and "set -euo pipefail" in lines
    assert lines.index("nvidia-smi -mig 1") < lines.index("nvidia-smi mig -cgi 3g.40gb,3g.40gb -C")
    assert mig_user_data(pool(sharing={"mode": "time-slicing", "replicas": 4})) == ""


# -- NodePool -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("p", [
    pool(),
    pool(capacityTypes=["SPOT", "ON_DEMAND"], sharing={"mode": "time-slicing", "replicas": 4},
         dedicatedTeam="vision", consolidation={"policy": "WhenEmpty", "after": "30m"}),
], ids=["plain", "shared-dedicated-spot"])
def test_node_pools_are_valid_node_pools(p):
    spec = node_pool_spec(p, node_class="l4")
    validate_custom_resource(manifest(NODE_POOL_API, "NodePool", spec))
    for key in [*spec["template"]["metadata"]["labels"], *(r["key"] for r in spec["template"]["spec"]["requirements"])]:
        domain = key.split("/")[0] if "/" in key else ""
        allowed = key in {"karpenter.sh/capacity-type", "node.kubernetes.io/instance-type", "kubernetes.io/arch",
                          "kubernetes.io/os"}
        assert allowed or not domain.endswith(RESTRICTED_LABEL_DOMAINS), key


def test_limits_bound_nodes_and_physical_gpus_of_the_largest_type():
    spec = node_pool_spec(pool(maxSize=3), node_class="l4")  # g6.12xlarge: 4 GPUs
    assert spec["limits"] == {"nvidia.com/gpu": "12", "nodes": "3"}


def test_requirements_name_the_pools_instance_and_capacity_types_on_linux_amd64():
    spec = node_pool_spec(pool(capacityTypes=["SPOT", "ON_DEMAND"]), node_class="l4")
    assert {r["key"]: (r["operator"], r["values"]) for r in spec["template"]["spec"]["requirements"]} == {
        "node.kubernetes.io/instance-type": ("In", ["g6.xlarge", "g6.12xlarge"]),
        "karpenter.sh/capacity-type": ("In", ["spot", "on-demand"]),
        "kubernetes.io/arch": ("In", ["amd64"]),
        "kubernetes.io/os": ("In", ["linux"]),
    }
    assert spec["template"]["spec"]["nodeClassRef"] == {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass",
                                                        "name": "l4"}


def test_nodes_carry_the_pools_labels_and_kubernetes_taints_but_no_capacity_label_of_ours():
    p = pool(sharing={"mode": "time-slicing", "replicas": 4}, dedicatedTeam="vision")
    template = node_pool_spec(p, node_class="l4")["template"]
    labels = template["metadata"]["labels"]
    assert labels[POOL_LABEL] == "l4" and labels[SHARING_LABEL] == "time-slicing" and labels[SLICES_LABEL] == "4"
    assert CAPACITY_LABEL not in labels
    assert template["spec"]["taints"] == [
        {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"},
        {"key": "ai-platform.io/dedicated", "value": "vision", "effect": "NoSchedule"}]


def test_disruption_rotation_and_drain_follow_the_pool_config():
    p = pool(consolidation={"policy": "WhenEmpty", "after": "30m"}, expireAfter="168h",
             terminationGracePeriod="2h")
    spec = node_pool_spec(p, node_class="l4")
    assert spec["disruption"] == {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "30m",
                                  "budgets": [{"nodes": "10%"}]}
    assert spec["template"]["spec"]["expireAfter"] == "168h"
    assert spec["template"]["spec"]["terminationGracePeriod"] == "2h"


# -- capacity floor ---------------------------------------------------------------------------------------------------

def placeholder(p: GpuPoolConfig) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "l4-capacity-floor", "namespace": CAPACITY_NAMESPACE},
            "spec": placeholder_deployment_spec(p, priority_class=PLACEHOLDER_PRIORITY_CLASS)}


def test_placeholders_hold_one_node_each_on_the_pool_below_every_real_pod():
    p = pool(instanceTypes=["g6.12xlarge", "g6.48xlarge"], minSize=2, dedicatedTeam="vision",
             sharing={"mode": "time-slicing", "replicas": 4})
    deployment = placeholder(p)
    kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    assert spec["replicas"] == 2
    assert pod["priorityClassName"] == PLACEHOLDER_PRIORITY_CLASS
    assert pod["nodeSelector"] == {POOL_LABEL: "l4"}
    assert {(t["key"], t["value"], t["effect"]) for t in pod["tolerations"]} == {
        (t["key"], t["value"], "NoSchedule") for t in gpu_taints(p)}
    [term] = pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"] == spec["template"]["metadata"]["labels"]
    [container] = pod["containers"]
    assert container["image"] == PAUSE.reference
    # The smallest node's physical GPUs (4 on g6.12xlarge), not its 16 slices: Karpenter sizes nodes physically.
    assert container["resources"]["requests"]["nvidia.com/gpu"] == 4
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 4


def test_placeholders_satisfy_pod_security_restricted():
    pod = placeholder(pool(minSize=1))["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 65535
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["automountServiceAccountToken"] is False


# -- controller IAM, interruption queue, chart values ------------------------------------------------------------------

NODE_ROLE = "arn:aws:iam::123456789012:role/aip-test-karpenter-nodes"
QUEUE = "arn:aws:sqs:us-east-1:123456789012:aip-test-karpenter-interruptions"
QUEUE_KEY = "arn:aws:kms:us-east-1:123456789012:key/queue"


@pytest.fixture
def controller_policy() -> dict[str, Any]:
    return karpenter_controller_policy(cluster_name=CLUSTER, partition="aws", region="us-east-1",
                                       account_id="123456789012", node_role_arn=NODE_ROLE, queue_arn=QUEUE,
                                       queue_key_arn=QUEUE_KEY, volume_key_arn=KEY)


def statements(policy: dict[str, Any], action: str) -> list[dict[str, Any]]:
    def actions(s: dict[str, Any]) -> list[str]:
        return [s["Action"]] if isinstance(s["Action"], str) else s["Action"]
    return [s for s in policy["Statement"] if s["Effect"] == "Allow" and action in actions(s)]


def test_controller_policy_has_no_wildcard_actions(controller_policy):
    for statement in controller_policy["Statement"]:
        actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        assert statement["Effect"] == "Allow"
        assert not any("*" in action for action in actions), statement["Sid"]
    assert len({s["Sid"] for s in controller_policy["Statement"]}) == len(controller_policy["Statement"])


def test_controller_may_pass_the_node_role_only_and_only_to_ec2(controller_policy):
    [passing] = statements(controller_policy, "iam:PassRole")
    assert passing["Resource"] == NODE_ROLE
    assert passing["Condition"]["StringEquals"]["iam:PassedToService"][0] == "ec2.amazonaws.com"


def test_controller_creates_and_destroys_only_what_is_tagged_for_this_cluster(controller_policy):
    owned = f"kubernetes.io/cluster/{CLUSTER}"
    for action in ("ec2:CreateLaunchTemplate", "iam:CreateInstanceProfile"):
        for statement in statements(controller_policy, action):
            assert statement["Condition"]["StringEquals"][f"aws:RequestTag/{owned}"] == "owned", action
    for action in ("ec2:TerminateInstances", "ec2:DeleteLaunchTemplate", "iam:DeleteInstanceProfile",
                   "iam:AddRoleToInstanceProfile"):
        [statement] = statements(controller_policy, action)
        assert statement["Condition"]["StringEquals"][f"aws:ResourceTag/{owned}"] == "owned", action
    # RunInstances on what it launches needs the request tags; on an unowned launch template, the resource tags.
    for statement in statements(controller_policy, "ec2:RunInstances"):
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        if any(":instance/" in r or ":launch-template/" in r for r in resources):
            assert "StringEquals" in statement["Condition"], statement["Sid"]


def test_controller_reaches_only_its_queue_its_cluster_and_the_volume_key_through_ec2(controller_policy):
    [queue] = statements(controller_policy, "sqs:ReceiveMessage")
    assert queue["Resource"] == QUEUE
    [cluster] = statements(controller_policy, "eks:DescribeCluster")
    assert cluster["Resource"] == f"arn:aws:eks:us-east-1:123456789012:cluster/{CLUSTER}"
    [ssm] = statements(controller_policy, "ssm:GetParameter")
    assert fnmatch.fnmatch("arn:aws:ssm:us-east-1::parameter/aws/service/eks/optimized-ami/1.34/amazon-linux-2023/"
                           "x86_64/nvidia/recommended/image_id", ssm["Resource"])
    assert not fnmatch.fnmatch("arn:aws:ssm:us-east-1:123456789012:parameter/team/secret", ssm["Resource"])
    for action in ("kms:GenerateDataKeyWithoutPlaintext", "kms:CreateGrant"):
        [statement] = statements(controller_policy, action)
        assert statement["Resource"] == KEY
        assert statement["Condition"]["StringEquals"] == {"kms:ViaService": "ec2.us-east-1.amazonaws.com"}
    [grant] = statements(controller_policy, "kms:CreateGrant")
    assert grant["Condition"]["Bool"] == {"kms:GrantIsForAWSResource": "true"}
    decrypts = {s["Resource"]: s["Condition"]["StringEquals"]["kms:ViaService"]
                for s in statements(controller_policy, "kms:Decrypt")}
    assert decrypts == {KEY: "ec2.us-east-1.amazonaws.com", QUEUE_KEY: "sqs.us-east-1.amazonaws.com"}


def test_only_this_stacks_rules_send_to_the_queue_and_only_over_tls():
    rules = ["arn:aws:events:us-east-1:123456789012:rule/a", "arn:aws:events:us-east-1:123456789012:rule/b"]
    allow, deny = interruption_queue_policy(QUEUE, rules)["Statement"]
    assert allow["Principal"] == {"Service": "events.amazonaws.com"} and allow["Action"] == "sqs:SendMessage"
    assert allow["Condition"] == {"ArnEquals": {"aws:SourceArn": rules}}
    assert deny["Effect"] == "Deny" and deny["Principal"] == "*"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_the_queue_key_lets_eventbridge_encrypt_and_nothing_else():
    plain = kms_key_policy("123456789012", "aws", "us-east-1")
    with_events = kms_key_policy("123456789012", "aws", "us-east-1", grants_for=("events",))
    [added] = [s for s in with_events["Statement"] if s not in plain["Statement"]]
    assert added["Principal"] == {"Service": "events.amazonaws.com"}
    assert added["Action"] == ["kms:GenerateDataKey", "kms:Decrypt"]


def test_controller_values_name_the_cluster_queue_role_and_system_nodes():
    values = karpenter_values(cluster_name=CLUSTER, cluster_endpoint="https://api", queue_name="q", region="eu-west-1",
                              role_arn="arn:role", replicas=2)
    assert values["settings"] == {"clusterName": CLUSTER, "clusterEndpoint": "https://api", "interruptionQueue": "q"}
    assert values["serviceAccount"] == {"name": "karpenter", "annotations": {"eks.amazonaws.com/role-arn": "arn:role"}}
    assert values["nodeSelector"] == {"ai-platform.io/node-role": "system"}
    assert values["controller"]["env"] == [{"name": "AWS_REGION", "value": "eu-west-1"}]
    assert (controller_replicas(1), controller_replicas(2), controller_replicas(3)) == (1, 2, 2)


# -- the shipped stacks -----------------------------------------------------------------------------------------------

def karpenter_pools(result) -> list[str]:
    return sorted(r.inputs["metadata"]["name"] for r in result.of_type(NODE_POOL))


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_karpenter_pools_become_node_classes_and_node_pools_after_the_release(preview, stack_config, stack):
    result, config = preview(stack), stack_config(stack)
    expected = sorted(p.name for p in config.gpu_pools if p.is_karpenter)
    assert expected and karpenter_pools(result) == expected
    assert sorted(r.inputs["metadata"]["name"] for r in result.of_type(NODE_CLASS)) == expected
    node_groups = {r.inputs.get("labels", {}).get(POOL_LABEL) for r in result.of_type("aws:eks/nodeGroup:NodeGroup")}
    assert not set(expected) & node_groups
    release = [r for r in result.of_type(RELEASE) if r.inputs["chart"] == KARPENTER.chart]
    assert len(release) == 1 and release[0].inputs["version"] == KARPENTER.version
    for custom in [*result.of_type(NODE_POOL), *result.of_type(NODE_CLASS)]:
        validate_custom_resource({k: custom.inputs[k] for k in ("apiVersion", "kind", "metadata", "spec")})
        assert release[0].urn in custom.options["dependsOn"], custom.urn


def test_karpenter_nodes_have_their_own_role_with_an_access_entry(preview):
    result = preview("dev")
    node_class = only(result, NODE_CLASS)
    role = node_class.inputs["spec"]["role"]
    entries = [e for e in result.of_type(ACCESS_ENTRY) if e.inputs["type"] == "EC2_LINUX"]
    assert [e.inputs["principalArn"].rsplit("/", 1)[-1] for e in entries] == [role]
    managed_roles = {g.inputs["nodeRoleArn"] for g in result.of_type("aws:eks/nodeGroup:NodeGroup")}
    assert entries[0].inputs["principalArn"] not in managed_roles
    assert node_access_findings(ResourceGraph(result)) == []
    # Without the entry, the check says the nodes could never join.
    [finding] = node_access_findings(ResourceGraph(seeded(result, drop=[entries[0].urn])))
    assert finding.subject == node_class.urn and "could never join" in finding.message


def test_identity_refuses_an_entry_for_a_managed_node_groups_role():
    group = record("aws:eks/nodeGroup:NodeGroup", "g", inputs={"nodeRoleArn": "arn:aws:iam::1:role/nodes"})
    entry = record(ACCESS_ENTRY, "e", inputs={"type": "EC2_LINUX", "principalArn": "arn:aws:iam::1:role/nodes"})
    [finding] = node_access_findings(ResourceGraph(result_of(group, entry)))
    assert finding.subject == entry.urn and "EKS creates itself" in finding.message


def test_controller_release_and_its_interruption_queue(preview):
    result = preview("dev")
    release = next(r for r in result.of_type(RELEASE) if r.inputs["chart"] == KARPENTER.chart)
    assert release.inputs["namespace"] == "kube-system" and release.inputs["atomic"] is True
    values = release.inputs["values"]
    queue = only(result, "aws:sqs/queue:Queue")
    assert values["settings"]["interruptionQueue"] == queue.inputs["name"] == "aip-dev-karpenter-interruptions"
    assert values["settings"]["clusterName"] == "aip-dev"
    assert values["replicas"] == 2
    controller = next(p for p in result.of_type("aws:iam/rolePolicy:RolePolicy") if "karpenter-controller" in p.name)
    [passing] = statements(policy_of(controller), "iam:PassRole")
    assert passing["Resource"].rsplit("/", 1)[-1] == only(result, NODE_CLASS).inputs["spec"]["role"]
    assert values["serviceAccount"]["annotations"]["eks.amazonaws.com/role-arn"].startswith(
        "arn:aws:iam::123456789012:role/aip-dev-karpenter-controller")
    # Encrypted with a customer key of its own, whose policy lets EventBridge encrypt what it sends.
    key = next(k for k in result.of_type("aws:kms/key:Key") if "karpenter" in k.name)
    assert "EventBridgeSendsToEncryptedQueues" in {s["Sid"] for s in policy_of(key)["Statement"]}
    assert queue.inputs["kmsMasterKeyId"] == key.output_struct["arn"]
    rules = result.of_type("aws:cloudwatch/eventRule:EventRule")
    assert sorted(json.loads(r.inputs["eventPattern"])["detail-type"][0] for r in rules) == sorted(
        p["detail-type"][0] for p in INTERRUPTION_EVENTS.values())
    targets = result.of_type("aws:cloudwatch/eventTarget:EventTarget")
    assert {t.inputs["arn"] for t in targets} == {queue.output_struct["arn"]}
    assert {t.inputs["rule"] for t in targets} == {r.output_struct["name"] for r in rules}
    [send, _] = policy_of(only(result, "aws:sqs/queuePolicy:QueuePolicy"))["Statement"]
    assert set(send["Condition"]["ArnEquals"]["aws:SourceArn"]) == {r.output_struct["arn"] for r in rules}


def test_subnets_and_cluster_security_group_carry_the_discovery_tag(preview):
    result = preview("dev")
    subnets = result.of_type("aws:ec2/subnet:Subnet")
    private = [s for s in subnets if "-private-" in s.name]
    assert private and all(s.inputs["tags"]["karpenter.sh/discovery"] == "aip-dev" for s in private)
    assert all("karpenter.sh/discovery" not in s.inputs["tags"] for s in subnets if s not in private)
    tag = only(result, "aws:ec2/tag:Tag")
    assert (tag.inputs["key"], tag.inputs["value"]) == ("karpenter.sh/discovery", "aip-dev")
    cluster = only(result, "aws:eks/cluster:Cluster")
    assert tag.inputs["resourceId"] == cluster.output_struct["vpcConfig"]["clusterSecurityGroupId"]


def test_a_capacity_floor_keeps_prods_minimum_of_nodes_warm(preview, stack_config):
    result, config = preview("prod"), stack_config("prod")
    floors = [p for p in config.gpu_pools if p.is_karpenter and p.min_size > 0]
    deployments = [r for r in result.of_type(DEPLOYMENT) if r.inputs["metadata"]["namespace"] == CAPACITY_NAMESPACE]
    assert floors and len(deployments) == len(floors)
    for p, deployment in zip(floors, deployments, strict=True):
        assert deployment.inputs["spec"]["replicas"] == p.min_size
        assert deployment.inputs["spec"]["template"]["spec"]["nodeSelector"] == {POOL_LABEL: p.name}
    namespace = next(r for r in result.of_type("kubernetes:core/v1:Namespace")
                     if r.inputs["metadata"]["name"] == CAPACITY_NAMESPACE)
    assert namespace.inputs["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    priority = only(result, "kubernetes:scheduling.k8s.io/v1:PriorityClass")
    assert priority.inputs["value"] < 0 and priority.inputs["preemptionPolicy"] == "Never"
    # dev keeps no floor.
    assert not [r for r in preview("dev").of_type(DEPLOYMENT)
                if r.inputs["metadata"]["namespace"] == CAPACITY_NAMESPACE]


def test_the_device_plugin_and_gpu_metrics_wait_for_the_karpenter_pools(preview):
    result = preview("dev")
    node_pool = only(result, NODE_POOL).urn  # a component dependency reaches its children
    for chart in ("nvidia-device-plugin", "dcgm-exporter"):
        release = next(r for r in result.of_type(RELEASE) if r.inputs["chart"] == chart)
        assert node_pool in release.options["dependsOn"], chart


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_deploy_checks_pass_with_karpenter(preview, stack_config, charts_dir, stack):
    findings = run_deploy_checks(preview(stack), stack_config(stack), charts_dir=charts_dir)
    assert not findings, "\n".join(f.render() for f in findings)


# -- modified stacks ---------------------------------------------------------------------------------------------------

def _edit_dev(project: Path, edit) -> None:
    path = project / "stacks" / "Pulumi.dev.yaml"
    stack = yaml.safe_load(path.read_text())
    edit(stack["config"])
    path.write_text(yaml.safe_dump(stack))


def test_without_karpenter_pools_there_is_no_karpenter(scratch_project: Path):
    def managed(config: dict[str, Any]) -> None:
        for p in config["ai-platform:gpuPools"]:
            for key in ("provisioner", "consolidation", "expireAfter", "terminationGracePeriod"):
                p.pop(key, None)
            p["capacityTypes"] = p["capacityTypes"][:1]
    _edit_dev(scratch_project, managed)
    result = run_preview("dev", Project.load(scratch_project))
    assert not result.of_type(NODE_POOL) and not result.of_type("aws:sqs/queue:Queue")
    assert not [r for r in result.of_type(RELEASE) if r.inputs["chart"] == KARPENTER.chart]
    assert not [r for r in result.of_type(ACCESS_ENTRY) if r.inputs["type"] == "EC2_LINUX"]
    assert [r for r in result.of_type("aws:eks/nodeGroup:NodeGroup")
            if r.inputs.get("labels", {}).get(POOL_LABEL) == "inference-l4"]


def test_a_vpc_the_stack_does_not_own_is_selected_by_subnet_id(scratch_project: Path):
    subnets = ["subnet-0aaaaaaaaaaaaaaaa", "subnet-0bbbbbbbbbbbbbbbb"]

    def byo(config: dict[str, Any]) -> None:
        config["ai-platform:network"] = {"existingVpcId": "vpc-0123456789abcdef0", "existingPrivateSubnetIds": subnets}
    _edit_dev(scratch_project, byo)
    result = run_preview("dev", Project.load(scratch_project))
    assert only(result, NODE_CLASS).inputs["spec"]["subnetSelectorTerms"] == [{"id": s} for s in subnets]
