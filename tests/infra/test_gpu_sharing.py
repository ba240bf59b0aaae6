"""GPU sharing: the device plugin's per-pool config, the labels that select it, and a replica's one slice."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from infra.components.gpu_node_pool import gpu_labels, pool_contract
from infra.components.nvidia_device_plugin import DEFAULT_CONFIG, device_plugin_config, device_plugin_values
from infra.config import GpuPoolConfig
from tests.conftest import aip


def pool(**overrides: Any) -> GpuPoolConfig:
    return GpuPoolConfig.model_validate({"name": "l4", "instanceTypes": ["g6.xlarge"], "maxSize": 2, **overrides})


TIME_SLICED = pool(provisioner="karpenter", sharing={"mode": "time-slicing", "replicas": 4})
MIG = pool(name="h100", provisioner="karpenter", instanceTypes=["p5.48xlarge"],
           sharing={"mode": "mig", "migProfile": "1g.10gb"})


def test_time_slicing_advertises_each_gpu_as_its_replicas_and_refuses_more_than_one_per_pod():
    config = device_plugin_config(TIME_SLICED)
    assert config["sharing"]["timeSlicing"] == {
        "renameByDefault": False, "failRequestsGreaterThanOne": True,
        "resources": [{"name": "nvidia.com/gpu", "replicas": 4}]}
    assert config["flags"]["migStrategy"] == "none"


def test_mig_advertises_the_instances_as_gpus_and_unshared_pools_share_nothing():
    assert device_plugin_config(MIG)["flags"]["migStrategy"] == "single" and "sharing" not in device_plugin_config(MIG)
    assert "sharing" not in device_plugin_config(pool()) and "sharing" not in device_plugin_config(None)


def test_each_node_selects_its_pools_config_by_label():
    values = device_plugin_values((TIME_SLICED, MIG))
    configs = {name: yaml.safe_load(text) for name, text in values["config"]["map"].items()}
    assert set(configs) == {DEFAULT_CONFIG, "l4", "h100"} and values["config"]["default"] == DEFAULT_CONFIG
    assert configs["l4"]["sharing"]["timeSlicing"]["resources"][0]["replicas"] == 4
    assert gpu_labels(TIME_SLICED)["nvidia.com/device-plugin.config"] == "l4"
    assert gpu_labels(MIG)["nvidia.com/mig.config"] == "all-1g.10gb"
    assert (gpu_labels(MIG)["ai-platform.io/gpu-sharing"], gpu_labels(MIG)["ai-platform.io/gpu-slices"]) == ("mig", "7")


def test_the_pool_contract_tells_teams_what_a_gpu_is_there():
    contract = pool_contract(TIME_SLICED)
    assert contract["provisioner"] == "karpenter"
    assert contract["sharing"] == {"mode": "time-slicing", "slicesPerGpu": 4, "migProfile": ""}
    assert "ai-platform.io/capacity-type" not in gpu_labels(TIME_SLICED)


def test_a_replica_on_a_shared_pool_asks_for_one_slice(scratch_project: Path):
    stack = scratch_project / "stacks" / "Pulumi.vision-dev.yaml"
    # One replica of two GPUs: within the team's quota, so only the slice is wrong.
    stack.write_text(stack.read_text().replace("gpu: 1}", "gpu: 2}").replace("max: 2", "max: 1"))
    run = aip("preview", "--stack", "vision-dev", "--no-package", cwd=scratch_project)
    assert run.returncode == 2, run.stderr
    assert run.stderr.strip().endswith(
        "ai-platform:models[0].resources.gpu = 2: pool inference-l4 shares its GPUs as time-slices (1/4 of a "
        "nvidia-l4): a replica asks for exactly 1 (one slice); for a whole GPU or several, use a pool without sharing")
    assert "Traceback" not in run.stderr
