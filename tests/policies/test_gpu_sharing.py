"""kubernetes-nvidia-gpu-sharing-valid: sharing labels that the pool's GPUs can honour pass; each other is caught.

Managed node groups carry the labels in ``labels``, Karpenter NodePools in ``spec.template.metadata.labels``.
"""

from __future__ import annotations

import pytest

from policies.aws.eks.nodegroups import NODE_GROUP
from policies.kubernetes.karpenter.nodepools import NODE_POOL
from policies.kubernetes.nvidia.gpu_sharing_valid import kubernetes_nvidia_gpu_sharing_valid
from tests.policies.support import DELETE, mutate, validate_resource
from tests.policies.test_aws_compute import GPU_NODE_GROUP
from tests.policies.test_karpenter import GPU_NODE_POOL, REQUIREMENTS

POLICY = kubernetes_nvidia_gpu_sharing_valid
SHARING = "ai-platform.io/gpu-sharing"
SLICES = "ai-platform.io/gpu-slices"
MIG = "nvidia.com/mig.config"
LABELS = "spec.template.metadata.labels"
# p5.48xlarge and p4de.24xlarge both carry 80 GB GPUs; 1g.10gb cuts each into 7.
MIG_POOL = mutate(mutate(GPU_NODE_POOL, LABELS, {
    "ai-platform.io/accelerator": "nvidia", SHARING: "mig", SLICES: "7", MIG: "all-1g.10gb"}),
    f"{REQUIREMENTS}.0.values", ["p5.48xlarge", "p4de.24xlarge"])
SLICED_GROUP = mutate(GPU_NODE_GROUP, "labels", {"ai-platform.io/accelerator": "nvidia", SHARING: "time-slicing",
                                                 SLICES: "4"})


@pytest.mark.parametrize(("resource_type", "props"), [
    (NODE_POOL, GPU_NODE_POOL), (NODE_POOL, MIG_POOL), (NODE_GROUP, SLICED_GROUP), (NODE_GROUP, GPU_NODE_GROUP),
    (NODE_POOL, mutate(GPU_NODE_POOL, f"{LABELS}.[{MIG}]", "all-disabled")),
], ids=["unshared-pool", "mig-pool", "time-sliced-group", "unlabelled-group", "mig-disabled"])
def test_sharing_the_gpus_can_do_passes(resource_type, props):
    assert validate_resource(POLICY, resource_type, props) == []


@pytest.mark.parametrize(("resource_type", "props", "path", "value", "messages"), [
    (NODE_POOL, MIG_POOL, f"{LABELS}.[{MIG}]", "all-1g.5gb",
     ["NodePool 'res' asks for MIG profile '1g.5gb', which the nvidia-a100-80gb GPU of p4de.24xlarge does not offer "
      "(1g.10gb, 1g.20gb, 2g.20gb, 3g.40gb, 4g.40gb, 7g.80gb).",
      "NodePool 'res' asks for MIG profile '1g.5gb', which the nvidia-h100 GPU of p5.48xlarge does not offer "
      "(1g.10gb, 1g.20gb, 2g.20gb, 3g.40gb, 4g.40gb, 7g.80gb)."]),
    (NODE_POOL, MIG_POOL, f"{REQUIREMENTS}.0.values", ["p5.48xlarge", "g6e.12xlarge"],
     ["NodePool 'res' asks for MIG profile '1g.10gb', which the nvidia-l40s GPU of g6e.12xlarge does not offer "
      "(it has no MIG)."]),
    (NODE_POOL, MIG_POOL, f"{LABELS}.[{MIG}]", DELETE,
     ["NodePool 'res' shares GPUs by MIG but its nvidia.com/mig.config label is '', not all-<profile>."]),
    (NODE_POOL, MIG_POOL, f"{LABELS}.[{MIG}]", "custom-layout",
     ["NodePool 'res' shares GPUs by MIG but its nvidia.com/mig.config label is 'custom-layout', not all-<profile>."]),
    (NODE_POOL, MIG_POOL, f"{LABELS}.[{SLICES}]", "4",
     ["NodePool 'res' has ai-platform.io/gpu-slices '4', but MIG profile '1g.10gb' cuts each GPU into 7."]),
    (NODE_POOL, MIG_POOL, REQUIREMENTS, [],
     ["NodePool 'res' shares GPUs by MIG but lists no instance types whose GPU is known (none listed), so MIG "
      "profile '1g.10gb' cannot be checked."]),
    (NODE_GROUP, SLICED_GROUP, f"labels.[{SLICES}]", "32",
     ["Node group 'res' time-slices GPUs but its ai-platform.io/gpu-slices label is '32'; it must be 2 to 16."]),
    (NODE_GROUP, SLICED_GROUP, f"labels.[{SLICES}]", DELETE,
     ["Node group 'res' time-slices GPUs but its ai-platform.io/gpu-slices label is '(not set)'; it must be 2 to "
      "16."]),
    (NODE_GROUP, SLICED_GROUP, f"labels.[{MIG}]", "all-1g.10gb",
     ["Node group 'res' carries nvidia.com/mig.config 'all-1g.10gb' but shares GPUs by 'time-slicing': the MIG "
      "manager would partition GPUs the device plugin does not expect."]),
    (NODE_GROUP, SLICED_GROUP, f"labels.[{SHARING}]", "mps",
     ["Node group 'res' has ai-platform.io/gpu-sharing 'mps'; allowed: none, time-slicing, mig."]),
    (NODE_POOL, GPU_NODE_POOL, f"{LABELS}.[{SLICES}]", "4",
     ["NodePool 'res' does not share GPUs but its ai-platform.io/gpu-slices label is '4'; it must be 1."]),
], ids=["profile-not-offered", "gpu-without-mig", "no-mig-config", "not-uniform", "slices-disagree", "no-types",
        "too-many-slices", "no-slices", "mig-config-on-time-slicing", "unknown-mode", "slices-without-sharing"])
def test_each_sharing_the_gpus_cannot_honour_is_reported(resource_type, props, path, value, messages):
    assert validate_resource(POLICY, resource_type, mutate(props, path, value)) == messages


@pytest.mark.parametrize(("value", "shown"), [("²", "²"), ("4Gi", "4Gi"), (float("inf"), "Infinity"),
                                              (float("nan"), "NaN"), ({}, "{}"), (True, "true")], ids=repr)
def test_slices_that_are_no_whole_number_are_reported_not_raised(value, shown):
    # "²" passes str.isdigit() but not int().
    assert validate_resource(POLICY, NODE_GROUP, mutate(SLICED_GROUP, f"labels.[{SLICES}]", value)) == [
        f"Node group 'res' time-slices GPUs but its ai-platform.io/gpu-slices label is '{shown}'; it must be 2 to 16."]
    assert validate_resource(POLICY, NODE_POOL, mutate(MIG_POOL, f"{LABELS}.[{SLICES}]", value)) == [
        f"NodePool 'res' has ai-platform.io/gpu-slices '{shown}', but MIG profile '1g.10gb' cuts each GPU into 7."]


def test_a_sharing_mode_that_is_no_word_is_shown_as_written():
    assert validate_resource(POLICY, NODE_GROUP, mutate(SLICED_GROUP, f"labels.[{SHARING}]", ["mig"])) == [
        "Node group 'res' has ai-platform.io/gpu-sharing '[\"mig\"]'; allowed: none, time-slicing, mig."]
