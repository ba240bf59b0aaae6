"""Instance types in stack config are checked against AWS's own catalog, with a suggestion for a typo."""

from __future__ import annotations

import json

import pytest

from infra.config import ConfigError, parse_stack_config
from infra.ec2_catalog import closest, instance_types
from infra.gpu_catalog import GPU_FAMILIES, gpu_instance_types, gpus_per_instance


def test_every_gpu_type_the_platform_knows_is_a_real_ec2_type():
    assert set(gpu_instance_types()) <= instance_types()


def test_the_gpu_table_covers_every_size_of_its_families():
    # A new size AWS adds to a family the platform supports must get its GPU count here.
    families = {f"{family}." for family in GPU_FAMILIES}
    real = {t for t in instance_types() if any(t.startswith(prefix) for prefix in families)}
    assert real == set(gpu_instance_types())


@pytest.mark.parametrize(("instance_type", "gpus"), [
    ("g6.xlarge", 1), ("g6.12xlarge", 4), ("g6e.48xlarge", 8), ("p5.4xlarge", 1), ("p5.48xlarge", 8),
    ("g4dn.metal", 8), ("m7i.large", 0), ("g6.2xlarg", 0)])
def test_gpus_per_instance(instance_type, gpus):
    assert gpus_per_instance(instance_type) == gpus


def test_typos_get_the_type_they_meant():
    assert closest("g6.2xlarg") == "g6.2xlarge"
    assert closest("m7i.larg") == "m7i.large"
    assert closest("nothing.like-it") is None


def platform(pools, system=("m7i.large",)) -> dict[str, str]:
    values = {"aws:region": "us-east-1", "ai-platform:environment": "dev", "ai-platform:costCenter": "cc",
              "ai-platform:dataClassification": "internal",
              "ai-platform:cluster": {"privateAccessCidrs": ["10.64.0.0/16"],
                                      "systemNodes": {"instanceTypes": list(system)}},
              "ai-platform:gpuPools": pools}
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}


def problems(values: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_stack_config(values, project="ai-platform", stack="dev")
    return [p.render() for p in caught.value.problems]


def test_a_gpu_type_typo_inside_a_valid_family_is_a_config_error():
    found = problems(platform([{"name": "l4", "instanceTypes": ["g6.xlarge", "g6.2xlarg"], "maxSize": 2}]))
    assert found == ['ai-platform:gpuPools[0].instanceTypes[1] = "g6.2xlarg": is not an EC2 instance type (did you '
                     "mean g6.2xlarge?)"]


def test_a_system_type_typo_is_a_config_error():
    found = problems(platform([{"name": "l4", "instanceTypes": ["g6.xlarge"], "maxSize": 2}], system=["m7i.larg"]))
    assert found == ['ai-platform:cluster.systemNodes.instanceTypes[0] = "m7i.larg": is not an EC2 instance type '
                     "(did you mean m7i.large?); see https://docs.aws.amazon.com/ec2/latest/instancetypes/"
                     "instance-types.html"]


def test_a_real_type_that_carries_no_supported_gpu_says_which_families_do():
    found = problems(platform([{"name": "x", "instanceTypes": ["m7i.large"], "maxSize": 1}]))
    assert found == ['ai-platform:gpuPools[0].instanceTypes[0] = "m7i.large": is not a supported GPU instance type; '
                     "allowed families: g4dn, g5, g6, g6e, p4d, p4de, p5, p5e, p5en"]
