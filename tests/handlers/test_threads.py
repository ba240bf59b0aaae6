"""Torch threads per serving process from the container's CPU limit (aip_serving.threads), without mocks."""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType

import pytest
import torch


@pytest.fixture(scope="module")
def threads(runtime_on_path: None) -> ModuleType:
    import aip_serving.threads

    return aip_serving.threads


def _files(tmp_path: Path, cpu_max: str | None = None, quota: str | None = None, period: str | None = None):
    paths = {name: tmp_path / name for name in ("cpu.max", "quota", "period")}
    for name, text in (("cpu.max", cpu_max), ("quota", quota), ("period", period)):
        if text is not None:
            paths[name].write_text(text)
    return paths["cpu.max"], paths["quota"], paths["period"]


@pytest.mark.parametrize(("cpu_max", "expected"), [("200000 100000\n", 2.0), ("150000 100000", 1.5),
                                                   ("max 100000\n", None)])
def test_cgroup_v2_limit(threads: ModuleType, tmp_path: Path, cpu_max: str, expected: float | None) -> None:
    assert threads.cgroup_cpu_limit(*_files(tmp_path, cpu_max=cpu_max)) == expected


@pytest.mark.parametrize(("quota", "period", "expected"), [("400000", "100000", 4.0), ("-1", "100000", None),
                                                           ("garbage", "100000", None)])
def test_cgroup_v1_limit_when_no_v2(threads: ModuleType, tmp_path: Path, quota: str, period: str,
                                    expected: float | None) -> None:
    assert threads.cgroup_cpu_limit(*_files(tmp_path, quota=quota, period=period)) == expected


def test_no_cgroup_files_means_unlimited(threads: ModuleType, tmp_path: Path) -> None:
    assert threads.cgroup_cpu_limit(*_files(tmp_path)) is None


def test_available_cpus_is_capped_by_the_limit_and_never_zero(threads: ModuleType) -> None:
    affinity = len(os.sched_getaffinity(0))
    assert threads.available_cpus(limit=0.5) == 1
    assert threads.available_cpus(limit=1000.0) == affinity
    assert threads.available_cpus(limit=1.2) == min(2, affinity)


@pytest.mark.parametrize(("configured", "processes", "cpus", "expected"),
                         [(3, 2, 8, 3), (None, 1, 8, 8), (None, 2, 8, 4), (None, 3, 8, 2), (None, 4, 2, 1)])
def test_threads_per_process(threads: ModuleType, configured: int | None, processes: int, cpus: int,
                             expected: int) -> None:
    assert threads.threads_per_process(configured, processes, cpus) == expected


def test_apply_sets_torch_threads(threads: ModuleType) -> None:
    before = torch.get_num_threads()
    try:
        assert threads.apply_torch_threads(1) == 1
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
