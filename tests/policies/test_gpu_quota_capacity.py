"""A team's GPU quota must fit the pools it may use: baseline passes, each oversized quota is caught."""

from __future__ import annotations

from policies.aws.eks.nodegroups import NODE_GROUP
from policies.kubernetes.core.team_namespace_gpu_quota_capacity import kubernetes_core_namespace_gpu_quota_capacity
from tests.policies.support import mutate, resource, validate_stack
from tests.policies.test_aws_compute import GPU_NODE_GROUP
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
