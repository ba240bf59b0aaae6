"""The GPU instance families the platform schedules on, and what each one carries.

One table feeds config validation (which instance types are allowed), node labels (which GPU a pool
offers) and the policy pack's allowlist, so the three never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GpuFamily:
    """An EC2 instance family with NVIDIA GPUs.

    Attributes:
        family: EC2 family prefix, e.g. ``g6``.
        gpu: NVIDIA GPU model, used as the ``ai-platform.io/gpu-type`` node label.
        gpu_memory_gib: Memory of one GPU.
    """

    family: str
    gpu: str
    gpu_memory_gib: int


# https://aws.amazon.com/ec2/instance-types/#Accelerated_Computing
GPU_FAMILIES: dict[str, GpuFamily] = {
    f.family: f
    for f in (
        GpuFamily("g4dn", "nvidia-t4", 16),
        GpuFamily("g5", "nvidia-a10g", 24),
        GpuFamily("g6", "nvidia-l4", 24),
        GpuFamily("g6e", "nvidia-l40s", 48),
        GpuFamily("p4d", "nvidia-a100", 40),
        GpuFamily("p4de", "nvidia-a100-80gb", 80),
        GpuFamily("p5", "nvidia-h100", 80),
        GpuFamily("p5e", "nvidia-h200", 141),
        GpuFamily("p5en", "nvidia-h200", 141),
    )
}


def family_of(instance_type: str) -> str:
    """Return the family prefix of an instance type (``g6.2xlarge`` -> ``g6``)."""
    return instance_type.split(".", 1)[0]


def gpu_family(instance_type: str) -> GpuFamily | None:
    """Return the GPU family of ``instance_type``, or None when it is not a supported GPU type."""
    family, _, size = instance_type.partition(".")
    if not size:
        return None
    return GPU_FAMILIES.get(family)


def allowed_families() -> str:
    """The supported families as a readable list for error messages."""
    return ", ".join(sorted(GPU_FAMILIES))
