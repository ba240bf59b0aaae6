"""A team's GPU quota must fit the pools it may use: baseline passes, each oversized quota is caught."""

from __future__ import annotations

import pytest

from policies.aws.eks.nodegroups import NODE_GROUP
from policies.kubernetes.core.team_namespace_gpu_quota_capacity import kubernetes_core_namespace_gpu_quota_capacity
from policies.kubernetes.karpenter.nodepools import NODE_POOL
from tests.policies.support import mutate, resource, validate_stack
from tests.policies.test_aws_compute import GPU_NODE_GROUP
from tests.policies.test_karpenter import GPU_NODE_POOL, REQUIREMENTS
from tests.policies.test_kubernetes import QUOTA, team

POLICY = kubernetes_core_namespace_gpu_quota_capacity
# 8 nodes of g6e.4xlarge (1 GPU) shared; 2 nodes of p5.48xlarge (8 GPUs) dedicated to another team.
SHARED = mutate(GPU_NODE_GROUP, "labels", {"ai-platform.io/gpu-pool": "l40s"})
SEARCH_ONLY = mutate(mutate(mutate(GPU_NODE_GROUP, "instanceTypes", ["p5.48xlarge"]), "scalingConfig.maxSize", 2.0),
                     "labels", {"ai-platform.io/dedicated": "search"})


def stack(gpus: str, *pools) -> list:
    quota = mutate(QUOTA, "spec.hard.[requests.nvidia.com/gpu]", gpus)
    return [*team(quota=quota), *(resource(NODE_GROUP, f"pool-{i}", p) for i, p in enumerate(pools))]


def test_a_quota_the_shared_pools_hold_passes():
    assert validate_stack(POLICY, stack("8", SHARED, SEARCH_ONLY)) == []


def test_a_quota_beyond_the_pools_is_caught_and_another_team_s_pool_does_not_count():
    assert validate_stack(POLICY, stack("9", SHARED, SEARCH_ONLY)) == [
        "Team namespace 'vision' may request 9 GPUs, more than the GPU pools it may use surely hold at maxSize (8)."]
    assert validate_stack(POLICY, stack("512", SHARED)) == [
        "Team namespace 'vision' may request 512 GPUs, more than the GPU pools it may use surely hold at maxSize "
        "(8)."]


def test_a_pool_of_mixed_sizes_counts_its_smallest():
    # Two nodes that may each come up as a 1-GPU g6e.xlarge promise 2 GPUs, not the 8 of two g6e.12xlarge.
    mixed = mutate(mutate(SHARED, "instanceTypes", ["g6e.xlarge", "g6e.12xlarge"]), "scalingConfig.maxSize", 2.0)
    assert validate_stack(POLICY, stack("8", mixed)) == [
        "Team namespace 'vision' may request 8 GPUs, more than the GPU pools it may use surely hold at maxSize (2)."]


def test_a_pool_dedicated_to_the_team_counts():
    own = mutate(SEARCH_ONLY, "labels", {"ai-platform.io/dedicated": "vision"})
    assert validate_stack(POLICY, stack("24", SHARED, own)) == []


def node_pool(gpu_limit: str | None, nodes: str | None, types: list[str], **labels: str) -> dict:
    limits = {k: v for k, v in (("nvidia.com/gpu", gpu_limit), ("nodes", nodes)) if v is not None}
    pool = mutate(mutate(GPU_NODE_POOL, "spec.limits", limits), f"{REQUIREMENTS}.0.values", types)
    return mutate(pool, "spec.template.metadata.labels", {"ai-platform.io/accelerator": "nvidia", **labels})


def stack_of(gpus: str, *pools: dict) -> list:
    quota = mutate(QUOTA, "spec.hard.[requests.nvidia.com/gpu]", gpus)
    return [*team(quota=quota), *(resource(NODE_POOL, f"pool-{i}", p) for i, p in enumerate(pools))]


def test_a_node_pool_holds_the_fewer_of_its_node_and_gpu_limits_in_its_smallest_type():
    # At most 4 nodes (the 6-GPU limit alone would allow 6 one-GPU nodes), each surely only a 1-GPU g6.xlarge.
    mixed = node_pool("6", "4", ["g6.xlarge", "g6.12xlarge"])
    assert validate_stack(POLICY, stack_of("4", mixed)) == []
    assert validate_stack(POLICY, stack_of("5", mixed)) == [
        "Team namespace 'vision' may request 5 GPUs, more than the GPU pools it may use surely hold at maxSize (4)."]
    # The GPU limit alone: 8 GPUs of 4-GPU nodes are 2 nodes.
    assert validate_stack(POLICY, stack_of("9", node_pool("8", None, ["g6.12xlarge"]))) == [
        "Team namespace 'vision' may request 9 GPUs, more than the GPU pools it may use surely hold at maxSize (8)."]


def test_a_shared_pool_counts_each_slice_and_pools_of_both_kinds_add_up():
    sliced = node_pool("2", "2", ["g6.xlarge"], **{"ai-platform.io/gpu-slices": "4"})
    assert validate_stack(POLICY, stack_of("8", sliced)) == []
    assert validate_stack(POLICY, stack_of("9", sliced)) == [
        "Team namespace 'vision' may request 9 GPUs, more than the GPU pools it may use surely hold at maxSize (8)."]
    sliced_group = mutate(SHARED, "labels", {"ai-platform.io/gpu-slices": "2"})
    both = [*stack_of("24", sliced), resource(NODE_GROUP, "group", sliced_group)]
    assert validate_stack(POLICY, both) == []


def test_another_team_s_node_pool_and_an_unbounded_one_hold_nothing_for_the_team():
    theirs = node_pool("16", "16", ["g6.xlarge"], **{"ai-platform.io/dedicated": "search"})
    unbounded = node_pool(None, None, ["g6.xlarge"])
    assert validate_stack(POLICY, stack_of("1", theirs, unbounded)) == [
        "Team namespace 'vision' may request 1 GPUs, more than the GPU pools it may use surely hold at maxSize (0)."]


@pytest.mark.parametrize(("asked", "shown"), [("abc", "abc"), (float("nan"), "NaN"), (float("inf"), "Infinity"),
                                              ([], "[]")], ids=repr)
def test_a_gpu_quota_that_is_no_quantity_is_reported_not_raised(asked, shown):
    assert validate_stack(POLICY, stack(asked, SHARED)) == [
        f"Team namespace 'vision' has a ResourceQuota 'quota' whose requests.nvidia.com/gpu is '{shown}', not a "
        "quantity; its GPUs cannot be checked against the pools."]


def test_a_gpu_quota_with_a_unit_is_read_as_the_quantity_it_is():
    assert validate_stack(POLICY, stack("4Gi", SHARED)) == [
        "Team namespace 'vision' may request 4294967296 GPUs, more than the GPU pools it may use surely hold at "
        "maxSize (8)."]


@pytest.mark.parametrize("value", [float("inf"), float("nan"), "abc", -4.0, "²", True], ids=repr)
def test_pools_whose_size_or_slices_cannot_be_read_hold_what_is_certain(value):
    # An unreadable maxSize holds nothing for certain; unreadable slices count each GPU once.
    unreadable_size = mutate(SHARED, "scalingConfig.maxSize", value)
    assert validate_stack(POLICY, stack("1", unreadable_size)) == [
        "Team namespace 'vision' may request 1 GPUs, more than the GPU pools it may use surely hold at maxSize (0)."]
    unreadable_slices = mutate(SHARED, "labels", {"ai-platform.io/gpu-slices": value})
    assert validate_stack(POLICY, stack("8", unreadable_slices)) == []
    pool = node_pool("2", "2", ["g6.xlarge"], **{"ai-platform.io/gpu-slices": value})
    assert validate_stack(POLICY, stack_of("2", pool)) == []
