"""kubernetes-nvidia-gpu-sharing-valid: a GPU pool's sharing labels describe a partitioning its GPUs can do.

The labels of a pool's nodes tell NVIDIA's components how to share each GPU: ``nvidia.com/mig.config`` names the
mig-parted configuration the MIG manager applies (``all-<profile>``: every GPU cut into instances of one profile,
https://github.com/NVIDIA/mig-parted), and ``ai-platform.io/gpu-slices`` how many ``nvidia.com/gpu`` one GPU
advertises, which team quotas count. A profile the GPU does not offer leaves the node's GPUs unpartitioned (or the
node without GPUs); a slice count that disagrees with the profile makes quotas promise what the pool cannot hold.
Time-slicing replicas follow the device plugin's sharing config
(https://docs.nvidia.com/datacenter/cloud-native/gpu-operator/latest/gpu-sharing.html): 2 to 16 slices per GPU, the
range stack config accepts (``gpuPools[].sharing.replicas``), so a pool built any other way is caught too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi_policy import ReportViolation, ResourceValidationArgs, ResourceValidationPolicy, Severity

from policies.aws.eks.nodegroups import NODE_GROUP
from policies.frameworks import CIS_EKS, SOC2, platform_baseline
from policies.gpu_catalog import gpu_family, mig_profiles
from policies.kubernetes.karpenter.nodepools import NODE_POOL, instance_types, template_labels
from policies.props import count, describe, get, is_mapping, items

SHARING_LABEL = "ai-platform.io/gpu-sharing"
SLICES_LABEL = "ai-platform.io/gpu-slices"
MIG_CONFIG_LABEL = "nvidia.com/mig.config"
MODES = ("none", "time-slicing", "mig")
# The mig-parted configuration that turns MIG off, valid on any pool.
MIG_DISABLED = "all-disabled"
MIN_SLICES, MAX_SLICES = 2, 16


def pool_of(resource_type: str, props: Any) -> tuple[str, Mapping[str, Any], list[str]] | None:
    """(what it is, node labels, instance types) of a managed node group or a Karpenter NodePool."""
    if resource_type == NODE_GROUP:
        labels = get(props, "labels")
        return "Node group", labels if is_mapping(labels) else {}, [str(t) for t in items(get(props, "instanceTypes"))]
    if resource_type == NODE_POOL:
        return "NodePool", template_labels(props), instance_types(props)
    return None


def slices(labels: Mapping[str, Any]) -> int | None:
    """The slices-per-GPU label as a whole number; None where absent or not one."""
    return count(get(labels, SLICES_LABEL))


def mig_problems(what: str, labels: Mapping[str, Any], types: list[str]) -> list[str]:
    config = describe(get(labels, MIG_CONFIG_LABEL, default=""))
    if not config.startswith("all-") or config == MIG_DISABLED:
        return [f"{what} shares GPUs by MIG but its {MIG_CONFIG_LABEL} label is '{config}', not all-<profile>."]
    profile = config.removeprefix("all-")
    unknown = [t for t in types if gpu_family(t) is None]
    if unknown or not types:
        return [f"{what} shares GPUs by MIG but lists no instance types whose GPU is known "
                f"({', '.join(unknown) or 'none listed'}), so MIG profile '{profile}' cannot be checked."]
    problems = []
    for instance_type in types:
        offered = mig_profiles(instance_type)
        if profile not in offered:
            gpu = gpu_family(instance_type).gpu
            problems.append(f"{what} asks for MIG profile '{profile}', which the {gpu} GPU of {instance_type} does "
                            f"not offer ({', '.join(offered) or 'it has no MIG'}).")
    if not problems and SLICES_LABEL in labels:
        expected = min(mig_profiles(t)[profile] for t in types)
        if slices(labels) != expected:
            shown = describe(get(labels, SLICES_LABEL))
            problems.append(f"{what} has {SLICES_LABEL} '{shown}', but MIG profile '{profile}' cuts each GPU into "
                            f"{expected}.")
    return problems


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    pool = pool_of(args.resource_type, args.props)
    if pool is None:
        return
    kind, labels, types = pool
    mode, what = get(labels, SHARING_LABEL), f"{kind} '{args.name}'"
    if mode is None:
        return
    if mode not in MODES:
        report_violation(f"{what} has {SHARING_LABEL} '{describe(mode)}'; allowed: {', '.join(MODES)}.")
        return
    if mode == "mig":
        for problem in mig_problems(what, labels, types):
            report_violation(problem)
        return
    if get(labels, MIG_CONFIG_LABEL, default=MIG_DISABLED) != MIG_DISABLED:
        report_violation(f"{what} carries {MIG_CONFIG_LABEL} '{describe(get(labels, MIG_CONFIG_LABEL))}' but shares "
                         f"GPUs by '{mode}': the MIG manager would partition GPUs the device plugin does not expect.")
    per_gpu, shown = slices(labels), describe(get(labels, SLICES_LABEL, default="(not set)"))
    if mode == "time-slicing" and (per_gpu is None or not MIN_SLICES <= per_gpu <= MAX_SLICES):
        report_violation(f"{what} time-slices GPUs but its {SLICES_LABEL} label is '{shown}'; it must be "
                         f"{MIN_SLICES} to {MAX_SLICES}.")
    if mode == "none" and SLICES_LABEL in labels and per_gpu != 1:
        report_violation(f"{what} does not share GPUs but its {SLICES_LABEL} label is '{shown}'; it must be 1.")


kubernetes_nvidia_gpu_sharing_valid = ResourceValidationPolicy(
    name="kubernetes-nvidia-gpu-sharing-valid",
    description="A GPU pool labelled ai-platform.io/gpu-sharing mig carries nvidia.com/mig.config all-<profile> with "
                "a profile every one of its instance types' GPU offers (and gpu-slices equal to the profile's "
                "instances per GPU); a time-sliced pool has 2 to 16 gpu-slices; other pools no MIG config.",
    validate=validate,
    severity=Severity.MEDIUM,
    framework=platform_baseline("gpu-sharing"),
    tags=["kubernetes", "nvidia", "gpu", "cost", CIS_EKS, SOC2],
    remediation_steps="Fix gpuPools[].sharing in stacks/Pulumi.<stack>.yaml: a MIG profile from the GPU's table in "
                      "policies/gpu_catalog.py (instance types of one GPU model), or time-slicing replicas 2 to 16.",
    url="https://docs.nvidia.com/datacenter/tesla/mig-user-guide/#supported-mig-profiles",
)
