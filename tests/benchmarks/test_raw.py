"""The raw reference: concurrent callers in the raw worker, and which ways of calling the model it tries."""

from __future__ import annotations

import threading
import time

import pytest
from serving_raw import measure
from serving_rounds import raw_callers


class SlowCore:
    """predict() sleeps (releasing the GIL, as torch does while it computes) and records its threads."""

    def __init__(self) -> None:
        self.threads: set[int] = set()

    def predict(self, instances: list[int]) -> list[int]:
        self.threads.add(threading.get_ident())
        time.sleep(0.002)
        return instances


def test_one_caller_measures_back_to_back_calls() -> None:
    result = measure(SlowCore(), [1, 2, 3], batch=2, seconds=0.05, min_calls=3)
    assert result["callers"] == 1 and result["batch"] == 2 and result["calls"] >= 3
    assert result["ips"] == pytest.approx(result["calls"] * 2 / result["elapsed_s"], rel=0.01)


def test_concurrent_callers_add_up_when_the_work_runs_in_parallel() -> None:
    core = SlowCore()
    alone = measure(core, [1], batch=1, seconds=0.2, min_calls=3)
    together = measure(core, [1], batch=1, seconds=0.2, min_calls=3, callers=2)
    assert together["callers"] == 2 and len(core.threads) >= 2
    assert together["ips"] > 1.5 * alone["ips"]


def test_callers_must_be_positive() -> None:
    with pytest.raises(ValueError, match="callers must be positive"):
        measure(SlowCore(), [1], batch=1, seconds=0.01, min_calls=1, callers=0)


@pytest.mark.parametrize(("workers", "torch_threads", "cpus", "expected"), [
    (1, None, 2, ((1, None),)),
    (2, None, 2, ((1, None), (2, 1))),
    (2, None, 8, ((1, None), (2, 4))),
    (4, 1, 8, ((1, None), (4, 1))),
    (3, None, 2, ((1, None), (3, 1))),
])
def test_raw_callers_mirror_the_most_parallel_server(workers, torch_threads, cpus, expected) -> None:
    assert raw_callers(workers, torch_threads, cpus) == expected


class TwoPathCore:
    """A core whose tensor path is cheaper than its instance path, as a real model's is."""

    calls: list[str]

    def __init__(self) -> None:
        self.calls = []

    @classmethod
    def v2_metadata(cls):
        return [{"name": "x", "datatype": "FP32", "shape": [-1, 2]}], []

    def predict(self, instances):
        self.calls.append("instances")
        time.sleep(0.004)
        return instances

    def decode_tensors(self, tensors):
        return list(tensors["x"])

    def predict_decoded(self, rows):
        self.calls.append("tensors")
        time.sleep(0.001)
        return rows


def test_the_reference_is_the_faster_of_the_instance_and_tensor_paths() -> None:
    from serving_raw import measure_paths, paths_of

    core = TwoPathCore()
    instances = [[1.0, 2.0], [3.0, 4.0]]
    paths = paths_of(core, instances)
    assert set(paths) == {"instances", "tensors"}
    result = measure_paths(paths, instances, {"batch": 2, "seconds": 0.1})
    assert result["path"] == "tensors" and set(result["ips_by_path"]) == {"instances", "tensors"}
    assert result["ips_by_path"]["tensors"] > result["ips_by_path"]["instances"]
    assert {"instances", "tensors"} <= set(core.calls)
