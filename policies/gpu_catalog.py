"""The GPU instance types the platform schedules on, and what each one carries.

One table feeds config validation (which instance types are allowed), node labels (which GPU a pool
offers), GPU budgets and quotas (how many GPUs a node brings) and the policy pack. It lives in the pack,
which must import nothing from the program; the program imports it from here (infra/gpu_catalog.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Sizes with one GPU, shared by the g families; the larger sizes carry 4 or 8.
_SINGLE = ("xlarge", "2xlarge", "4xlarge", "8xlarge", "16xlarge")


@dataclass(frozen=True)
class GpuFamily:
    """An EC2 instance family with NVIDIA GPUs.

    Attributes:
        family: EC2 family prefix, e.g. ``g6``.
        gpu: NVIDIA GPU model, used as the ``ai-platform.io/gpu-type`` node label.
        gpu_memory_gib: Memory of one GPU.
        sizes: Every size of the family and the GPUs an instance of it carries.
        mig_profiles: The MIG profiles its GPU can be partitioned into, each with how many instances of it one GPU
            holds when partitioned into that profile alone; empty for GPUs without MIG.
    """

    family: str
    gpu: str
    gpu_memory_gib: int
    sizes: dict[str, int] = field(default_factory=dict)
    mig_profiles: dict[str, int] = field(default_factory=dict)


def _g_family(family: str, gpu: str, memory: int, *, metal: int = 0) -> GpuFamily:
    sizes = {size: 1 for size in _SINGLE} | {"12xlarge": 4}
    if family == "g4dn":
        sizes |= {"metal": metal}
    else:
        sizes |= {"24xlarge": 4, "48xlarge": 8}
    return GpuFamily(family, gpu, memory, sizes)


# Profiles of one GPU partitioned uniformly (`all-<profile>` in NVIDIA's mig-parted configs), from NVIDIA's MIG user
# guide, "Supported MIG Profiles": https://docs.nvidia.com/datacenter/tesla/mig-user-guide/#supported-mig-profiles
_MIG_A100_40GB = {"1g.5gb": 7, "2g.10gb": 3, "3g.20gb": 2, "4g.20gb": 1, "7g.40gb": 1}
_MIG_80GB = {"1g.10gb": 7, "1g.20gb": 4, "2g.20gb": 3, "3g.40gb": 2, "4g.40gb": 1, "7g.80gb": 1}
_MIG_H200 = {"1g.18gb": 7, "1g.35gb": 4, "2g.35gb": 3, "3g.71gb": 2, "4g.71gb": 1, "7g.141gb": 1}

# https://aws.amazon.com/ec2/instance-types/#Accelerated_Computing (GPUs per size from each family's page);
# every type here is in the EC2 API's InstanceType enum (a test checks it against botocore's model).
GPU_FAMILIES: dict[str, GpuFamily] = {
    f.family: f
    for f in (
        _g_family("g4dn", "nvidia-t4", 16, metal=8),
        _g_family("g5", "nvidia-a10g", 24),
        _g_family("g6", "nvidia-l4", 24),
        _g_family("g6e", "nvidia-l40s", 48),
        GpuFamily("p4d", "nvidia-a100", 40, {"24xlarge": 8}, _MIG_A100_40GB),
        GpuFamily("p4de", "nvidia-a100-80gb", 80, {"24xlarge": 8}, _MIG_80GB),
        GpuFamily("p5", "nvidia-h100", 80, {"4xlarge": 1, "48xlarge": 8}, _MIG_80GB),
        GpuFamily("p5e", "nvidia-h200", 141, {"48xlarge": 8}, _MIG_H200),
        GpuFamily("p5en", "nvidia-h200", 141, {"48xlarge": 8}, _MIG_H200),
    )
}


def family_of(instance_type: str) -> str:
    """Return the family prefix of an instance type (``g6.2xlarge`` -> ``g6``)."""
    return instance_type.split(".", 1)[0]


def gpu_family(instance_type: str) -> GpuFamily | None:
    """Return the GPU family of ``instance_type``, or None when it is not a known GPU instance type."""
    family, _, size = instance_type.partition(".")
    found = GPU_FAMILIES.get(family)
    return found if found is not None and size in found.sizes else None


def gpus_per_instance(instance_type: str) -> int:
    """GPUs an instance of ``instance_type`` carries (0 for a type without GPUs or an unknown one)."""
    found = gpu_family(instance_type)
    return found.sizes[instance_type.partition(".")[2]] if found else 0


def mig_profiles(instance_type: str) -> dict[str, int]:
    """MIG profiles of the GPU of ``instance_type`` and the instances of each one GPU holds (empty: no MIG)."""
    found = gpu_family(instance_type)
    return dict(found.mig_profiles) if found else {}


def gpu_instance_types() -> list[str]:
    """Every known GPU instance type, sorted."""
    return sorted(f"{f.family}.{size}" for f in GPU_FAMILIES.values() for size in f.sizes)


def allowed_families() -> str:
    """The supported families as a readable list for error messages."""
    return ", ".join(sorted(GPU_FAMILIES))
