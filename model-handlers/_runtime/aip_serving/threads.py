"""How many intra-op torch threads a serving process should use, from the CPUs its container may use.

torch sizes its thread pool from the cores of the node, not from the container's CPU limit: a predictor
limited to 2 CPUs on a 64-core node starts 32 or more threads per process and spends its quota on
contention and CFS throttling. The platform therefore sets the thread count itself:
``torchThreads`` in ``model-config.yaml`` when given, else the CPUs the process may use (its cgroup
quota, else its CPU affinity) divided by the processes that share them (TorchServe workers), at least 1.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_V2_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")
CGROUP_V1_QUOTA = Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
CGROUP_V1_PERIOD = Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us")


def cgroup_cpu_limit(
    cpu_max: Path = CGROUP_V2_CPU_MAX, quota: Path = CGROUP_V1_QUOTA, period: Path = CGROUP_V1_PERIOD
) -> float | None:
    """The container's CPU limit in CPUs (cgroup v2 ``cpu.max``, else v1 CFS quota), or None when unlimited."""
    try:
        fields = cpu_max.read_text().split()
        if len(fields) == 2 and fields[0] != "max":
            return int(fields[0]) / int(fields[1])
        if fields:
            return None
    except (OSError, ValueError, ZeroDivisionError):
        pass
    try:
        limit, length = int(quota.read_text()), int(period.read_text())
    except (OSError, ValueError):
        return None
    return limit / length if limit > 0 and length > 0 else None


def available_cpus(limit: float | None = None) -> int:
    """CPUs this process may use: its affinity, capped by the cgroup limit (rounded up, at least 1)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cpus = os.cpu_count() or 1
    quota = cgroup_cpu_limit() if limit is None else limit
    if quota is not None:
        cpus = min(cpus, math.ceil(quota))
    return max(cpus, 1)


def threads_per_process(configured: int | None, processes: int, cpus: int | None = None) -> int:
    """``configured`` when set, else an equal share of the CPUs per process (at least 1)."""
    if configured is not None:
        return configured
    return max((available_cpus() if cpus is None else cpus) // max(processes, 1), 1)


def apply_torch_threads(configured: int | None, processes: int = 1) -> int:
    """Set torch's intra-op threads for this process (see the module docstring); returns the count set."""
    import torch

    threads = threads_per_process(configured, processes)
    torch.set_num_threads(threads)
    return threads
