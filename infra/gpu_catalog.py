"""The GPU instance types the platform schedules on (the table lives in the policy pack; see there)."""

from policies.gpu_catalog import (
    GPU_FAMILIES,
    GpuFamily,
    allowed_families,
    family_of,
    gpu_family,
    gpu_instance_types,
    gpus_per_instance,
    mig_profiles,
)

__all__ = ["GPU_FAMILIES", "GpuFamily", "allowed_families", "family_of", "gpu_family", "gpu_instance_types",
           "gpus_per_instance",
           "mig_profiles"]
