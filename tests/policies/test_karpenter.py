"""Karpenter NodePool policies: a compliant GPU NodePool passes; each unbounded, unrotated or spot pool is caught.

The baseline is a NodePool as infra/components/karpenter_node_pool.py builds it (limits as quantity strings, as
the engine hands them over); each case changes one field.
"""

from __future__ import annotations

from typing import Any

import pytest

from policies.aws.eks.nodegroup_gpu_budget import aws_eks_nodegroup_gpu_budget
from policies.aws.eks.nodegroups import NODE_GROUP
from policies.kubernetes.karpenter.nodepool_limits import kubernetes_karpenter_nodepool_limits
from policies.kubernetes.karpenter.nodepool_spot import kubernetes_karpenter_nodepool_spot
from policies.kubernetes.karpenter.nodepools import NODE_POOL, is_gpu_node_pool
from tests.policies.support import DELETE, mutate, resource, validate_resource, validate_stack
from tests.policies.test_aws_compute import GPU_NODE_GROUP

INSTANCE_TYPE = {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["g6.xlarge", "g6.12xlarge"]}
ON_DEMAND = {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]}
GPU_NODE_POOL: dict[str, Any] = {
    "apiVersion": "karpenter.sh/v1", "kind": "NodePool",
    "metadata": {"name": "l4", "labels": {"ai-platform.io/team": "platform"}},
    "spec": {
        "template": {
            "metadata": {"labels": {"ai-platform.io/accelerator": "nvidia", "ai-platform.io/gpu-pool": "l4",
                                    "ai-platform.io/gpu-sharing": "none", "ai-platform.io/gpu-slices": "1"}},
            "spec": {
                "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "l4"},
                "requirements": [INSTANCE_TYPE, ON_DEMAND,
                                 {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}],
                "taints": [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}],
                "expireAfter": "720h", "terminationGracePeriod": "24h",
            },
        },
        "limits": {"nvidia.com/gpu": "8", "nodes": "4"},
        "disruption": {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "10m"},
    },
}
# A CPU pool selected by family, bounded by CPU.
CPU_NODE_POOL = mutate(mutate(mutate(GPU_NODE_POOL, "spec.template.metadata.labels", {}),
                              "spec.template.spec.requirements",
                              [{"key": "karpenter.k8s.aws/instance-family", "operator": "In", "values": ["m7i"]}]),
                       "spec.limits", {"cpu": "64"})
REQUIREMENTS = "spec.template.spec.requirements"

LIMITS = kubernetes_karpenter_nodepool_limits
SPOT = kubernetes_karpenter_nodepool_spot
BUDGET = aws_eks_nodegroup_gpu_budget


def test_gpu_pools_are_recognised_by_label_instance_type_family_or_gpu_requirement():
    assert is_gpu_node_pool(GPU_NODE_POOL)
    assert not is_gpu_node_pool(CPU_NODE_POOL)
    unlabelled = mutate(GPU_NODE_POOL, "spec.template.metadata.labels", {})
    assert is_gpu_node_pool(unlabelled)
    by_family = mutate(CPU_NODE_POOL, f"{REQUIREMENTS}.0.values", ["g6e"])
    assert is_gpu_node_pool(by_family)
    by_count = mutate(CPU_NODE_POOL, REQUIREMENTS,
                      [{"key": "karpenter.k8s.aws/instance-gpu-count", "operator": "Gt", "values": ["0"]}])
    assert is_gpu_node_pool(by_count)


# --- kubernetes-karpenter-nodepool-limits ---------------------------------------------------------------------

@pytest.mark.parametrize("baseline", [GPU_NODE_POOL, CPU_NODE_POOL, mutate(CPU_NODE_POOL, "spec.limits", {"nodes": 3})],
                         ids=["gpu", "cpu", "nodes"])
def test_bounded_rotated_node_pools_pass(baseline):
    assert validate_resource(LIMITS, NODE_POOL, baseline) == []
    # Karpenter's default expireAfter (720h) applies when it is not set.
    assert validate_resource(LIMITS, NODE_POOL, mutate(baseline, "spec.template.spec.expireAfter", DELETE)) == []


@pytest.mark.parametrize(("baseline", "path", "value", "message"), [
    (GPU_NODE_POOL, "spec.limits", DELETE,
     "GPU NodePool 'res' has no spec.limits[\"nvidia.com/gpu\"]: Karpenter may launch GPU nodes until the account's "
     "EC2 quota stops it."),
    (GPU_NODE_POOL, "spec.limits", {"nodes": "4"},
     "GPU NodePool 'res' has no spec.limits[\"nvidia.com/gpu\"]: Karpenter may launch GPU nodes until the account's "
     "EC2 quota stops it."),
    (CPU_NODE_POOL, "spec.limits", {"ephemeral-storage": "1Ti"},
     "NodePool 'res' has no spec.limits on nodes, cpu, memory, nvidia.com/gpu: Karpenter may launch nodes until the "
     "account's EC2 quota stops it."),
    (GPU_NODE_POOL, "spec.replicas", 2,
     "Static NodePool 'res' (spec.replicas) has no spec.limits.nodes, the only limit Karpenter applies to a static "
     "pool."),
    (GPU_NODE_POOL, "spec.template.spec.expireAfter", "Never",
     "NodePool 'res' sets expireAfter: Never: its nodes are never replaced, so never patched; set a duration such as "
     "720h."),
    (GPU_NODE_POOL, "spec.template.spec.terminationGracePeriod", DELETE,
     "NodePool 'res' has no terminationGracePeriod: a PodDisruptionBudget or a do-not-disrupt pod can keep an expired "
     "or drifted node running forever."),
], ids=["gpu-no-limits", "gpu-nodes-only", "cpu-unbounded", "static-no-nodes", "never-expires", "no-grace-period"])
def test_each_unbounded_or_unrotated_node_pool_is_reported(baseline, path, value, message):
    broken = mutate(baseline, path, value)
    if path == "spec.replicas":
        broken = mutate(broken, "spec.limits", {"nvidia.com/gpu": "8"})
    assert validate_resource(LIMITS, NODE_POOL, broken) == [message]


def test_never_expiring_nodes_pass_where_config_allows_them_and_other_types_are_ignored():
    never = mutate(GPU_NODE_POOL, "spec.template.spec.expireAfter", "Never")
    assert validate_resource(LIMITS, NODE_POOL, never, config={"allowNeverExpire": True}) == []
    assert validate_resource(LIMITS, NODE_GROUP, GPU_NODE_GROUP) == []


# --- kubernetes-karpenter-nodepool-spot ----------------------------------------------------------------------

@pytest.mark.parametrize(("requirement", "shown"), [
    ({"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand", "spot"]}, "In on-demand, spot"),
    ({"key": "karpenter.sh/capacity-type", "operator": "NotIn", "values": ["reserved"]}, "NotIn reserved"),
    ({"key": "karpenter.sh/capacity-type", "operator": "Exists"}, "Exists"),
], ids=["in-spot", "not-in-without-spot", "exists"])
def test_a_node_pool_admitting_spot_is_reported_unless_allowed(requirement, shown):
    spot = mutate(GPU_NODE_POOL, f"{REQUIREMENTS}.1", requirement)
    assert validate_resource(SPOT, NODE_POOL, spot) == [
        f"NodePool 'res' admits spot capacity (karpenter.sh/capacity-type {shown}): EC2 may reclaim its nodes with "
        "two minutes' notice, taking serving replicas down; require on-demand (or reserved) here."]
    assert validate_resource(SPOT, NODE_POOL, spot, config={"allowSpot": True}) == []


def test_on_demand_reserved_and_default_capacity_pass():
    assert validate_resource(SPOT, NODE_POOL, GPU_NODE_POOL) == []
    reserved = mutate(GPU_NODE_POOL, f"{REQUIREMENTS}.1.values", ["reserved", "on-demand"])
    assert validate_resource(SPOT, NODE_POOL, reserved) == []
    # Without a capacity-type requirement Karpenter launches on-demand.
    default = mutate(GPU_NODE_POOL, REQUIREMENTS, [INSTANCE_TYPE])
    assert validate_resource(SPOT, NODE_POOL, default) == []
    # A second requirement that takes spot away again wins: Karpenter intersects them.
    narrowed = mutate(GPU_NODE_POOL, REQUIREMENTS, [
        INSTANCE_TYPE, {"key": "karpenter.sh/capacity-type", "operator": "Exists"},
        {"key": "karpenter.sh/capacity-type", "operator": "NotIn", "values": ["spot"]}])
    assert validate_resource(SPOT, NODE_POOL, narrowed) == []


# --- aws-eks-nodegroup-gpu-budget over NodePools ---------------------------------------------------------------

def fleet(*pools: dict[str, Any], groups: tuple[float, ...] = ()) -> list:
    return [*(resource(NODE_POOL, f"pool-{i}", p) for i, p in enumerate(pools)),
            *(resource(NODE_GROUP, f"gpu-{i}", mutate(GPU_NODE_GROUP, "scalingConfig.maxSize", size))
              for i, size in enumerate(groups))]


def test_a_node_pool_counts_the_smaller_of_its_gpu_limit_and_nodes_times_its_largest_type():
    # 8 GPUs by the GPU limit; 4 nodes of up to 4 GPUs (g6.12xlarge) would be 16: 8 count.
    assert validate_stack(BUDGET, fleet(GPU_NODE_POOL), config={"maxGpus": 7}) == [
        "GPU pools can scale to 8 GPUs (pool-0=8); the budget is 7 GPUs."]
    # 1 node of up to 4 GPUs bounds it tighter than its 8-GPU limit.
    one_node = mutate(GPU_NODE_POOL, "spec.limits.nodes", 1.0)
    assert validate_stack(BUDGET, fleet(one_node), config={"maxGpus": 3}) == [
        "GPU pools can scale to 4 GPUs (pool-0=4); the budget is 3 GPUs."]
    # Without a GPU limit, nodes times the largest type count.
    nodes_only = mutate(GPU_NODE_POOL, "spec.limits", {"nodes": "3"})
    assert validate_stack(BUDGET, fleet(nodes_only), config={"maxGpus": 11}) == [
        "GPU pools can scale to 12 GPUs (pool-0=12); the budget is 11 GPUs."]


def test_node_pools_and_node_groups_share_one_budget_and_cpu_pools_do_not_count():
    assert validate_stack(BUDGET, fleet(GPU_NODE_POOL, CPU_NODE_POOL, groups=(24.0,))) == []
    assert validate_stack(BUDGET, fleet(GPU_NODE_POOL, CPU_NODE_POOL, groups=(25.0,))) == [
        "GPU pools can scale to 33 GPUs (gpu-0=25, pool-0=8); the budget is 32 GPUs."]


def test_a_gpu_node_pool_without_a_countable_limit_is_refused():
    unbounded = mutate(GPU_NODE_POOL, "spec.limits", {"cpu": "1000"})
    assert validate_stack(BUDGET, fleet(unbounded)) == [
        "GPU NodePool 'pool-0' sets neither spec.limits[\"nvidia.com/gpu\"] nor spec.limits.nodes: Karpenter could "
        "launch GPU nodes without bound."]
    by_family = mutate(mutate(GPU_NODE_POOL, "spec.limits", {"nodes": "2"}), f"{REQUIREMENTS}.0",
                       {"key": "karpenter.k8s.aws/instance-family", "operator": "In", "values": ["g6"]})
    assert validate_stack(BUDGET, fleet(by_family)) == [
        "GPU NodePool 'pool-0' limits nodes, but its instance types' GPUs are not known (no "
        "node.kubernetes.io/instance-type In requirement); set spec.limits[\"nvidia.com/gpu\"] so its GPUs can be "
        "counted against the budget."]


@pytest.mark.parametrize(("value", "shown"), [("abc", "abc"), ("-8", "-8"), (-8.0, "-8.0"), (float("nan"), "NaN"),
                                              ("inf", "inf"), ([], "[]"), (True, "true")], ids=repr)
def test_a_gpu_limit_that_is_no_quantity_is_reported_and_never_counted(value, shown):
    broken = mutate(GPU_NODE_POOL, "spec.limits.[nvidia.com/gpu]", value)
    problem = f"has spec.limits[\"nvidia.com/gpu\"] '{shown}', not a quantity of 0 or more"
    # Still bounded by its nodes limit, so the pool itself passes but for the unreadable entry.
    assert validate_resource(LIMITS, NODE_POOL, broken) == [f"NodePool 'res' {problem}."]
    # A negative limit would lower the total and let the other pools past the budget.
    assert validate_stack(BUDGET, fleet(broken, groups=(40.0,))) == [
        f"GPU NodePool 'pool-0' {problem}; its GPUs cannot be counted against the budget.",
        "GPU pools can scale to 40 GPUs (gpu-0=40); the budget is 32 GPUs."]


def test_limits_that_are_no_map_are_reported():
    broken = mutate(GPU_NODE_POOL, "spec.limits", "8")
    assert validate_resource(LIMITS, NODE_POOL, broken) == [
        "NodePool 'res' has spec.limits '8', not a map of resource names to quantities.",
        "GPU NodePool 'res' has no spec.limits[\"nvidia.com/gpu\"]: Karpenter may launch GPU nodes until the "
        "account's EC2 quota stops it."]
