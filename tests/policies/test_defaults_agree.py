"""What config, the pack and the cluster each default to agree: one source, checked here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra.config.capacity import AUTOSCALING_DEFAULTS
from infra.config.models import GpuPoolConfig
from infra.gpu_catalog import GPU_FAMILIES
from infra.versions import SUPPORTED_EKS_VERSIONS
from policies.aws.eks.cluster_supported_version import DEFAULT_SUPPORTED_VERSIONS
from policies.aws.eks.nodegroup_instance_types import GPU_FAMILIES as PACK_GPU_FAMILIES

ROOT = Path(__file__).resolve().parents[2]


def pack_config(environment: str) -> dict:
    return json.loads((ROOT / "policies" / "config" / f"{environment}.json").read_text())


@pytest.mark.parametrize("environment", ["dev", "staging", "prod"])
def test_supported_eks_versions_agree(environment):
    assert list(SUPPORTED_EKS_VERSIONS) == DEFAULT_SUPPORTED_VERSIONS
    assert pack_config(environment)["aws-eks-cluster-supported-version"]["supportedVersions"] == \
        list(SUPPORTED_EKS_VERSIONS)


def test_the_pack_allows_every_gpu_family_config_accepts():
    assert set(PACK_GPU_FAMILIES) == set(GPU_FAMILIES)
    for family in GPU_FAMILIES.values():
        size = next(iter(family.sizes))
        GpuPoolConfig.model_validate({"name": "p", "instanceTypes": [f"{family.family}.{size}"], "maxSize": 1})


@pytest.mark.parametrize("environment", ["dev", "staging", "prod"])
def test_scale_to_zero_defaults_to_what_the_pack_allows(environment):
    allowed = pack_config(environment)["kubernetes-keda-scaledobject-floor"]["allowScaleToZero"]
    assert AUTOSCALING_DEFAULTS[environment]["scaleToZero"] == allowed
    # Spot is allowed for Karpenter pools exactly where it is for node groups.
    assert pack_config(environment)["kubernetes-karpenter-nodepool-spot"]["allowSpot"] == \
        pack_config(environment)["aws-eks-nodegroup-gpu-on-demand"]["allowSpot"]


@pytest.mark.parametrize("environment", ["dev", "staging", "prod"])
def test_the_pack_requires_replication_and_its_time_control_where_config_does(environment):
    from infra.config.recovery import RecoveryConfig, check_recovery
    from policies.defaults import DEFAULT_ALLOWED_REGIONS

    pack = pack_config(environment)["aws-s3-bucket-replication"]
    try:
        check_recovery(None, environment=environment, region="us-east-1", project="ai-platform")
        required = False
    except ValueError:
        required = True
    assert pack["requireReplication"] is required
    defaulted = check_recovery(RecoveryConfig(region="us-west-2"), environment=environment, region="us-east-1",
                               project="ai-platform")
    assert pack["requireReplicationTimeControl"] is defaulted.replication_time_control is (environment == "prod")
    # A recovery region config accepts is one the pack lets resources live in.
    assert pack_config(environment)["aws-all-resource-allowed-region"]["allowedRegions"] == \
        list(DEFAULT_ALLOWED_REGIONS)
