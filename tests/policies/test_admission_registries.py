"""kubernetes-admission-approved-registries: the cluster's image allowlist stays within the pack's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

from infra.components.admission_policies import policy_metadata
from policies.defaults import DEFAULT_APPROVED_REGISTRIES
from policies.kubernetes.core.admission_approved_registries import (
    CLUSTER,
    VALIDATING_ADMISSION_POLICY,
)
from policies.kubernetes.core.admission_approved_registries import (
    kubernetes_admission_approved_registries as admission_registries,
)
from policies.kubernetes.kserve.inferenceservice_approved_images import (
    kubernetes_kserve_inferenceservice_approved_images as approved_images,
)
from tests.policies.support import resource, validate_stack

ROOT = Path(__file__).resolve().parents[2]
PACK = "docker.io/pytorch/, docker.io/kserve/"


def platform(registries: tuple[str, ...] = DEFAULT_APPROVED_REGISTRIES,
             metadata: dict[str, Any] | None = None, admission: bool = True) -> list:
    """A platform stack as stack policies see it: its cluster and the component's registries policy."""
    found = [resource(CLUSTER, "aip-prod-cluster-eks", {"name": "aip-prod"})]
    if admission:
        found.append(resource(VALIDATING_ADMISSION_POLICY, "aip-prod-admission-aip-approved-registries", {
            "metadata": metadata or policy_metadata("aip-approved-registries", registries),
            "spec": {"failurePolicy": "Fail"}}))
    return found


def widened(prefix: str) -> str:
    return (f"ValidatingAdmissionPolicy 'aip-approved-registries' admits team images under '{prefix}', which the "
            f"pack's approvedRegistries ({PACK}) do not cover; remove it from cluster.approvedRegistries or have "
            "it reviewed into the pack's approvedRegistries.")


@pytest.mark.parametrize("registries", [
    DEFAULT_APPROVED_REGISTRIES,
    ("docker.io/pytorch/",),
    ("docker.io/pytorch/torchserve-kfs/", "docker.io/kserve/"),
])
def test_a_cluster_allowlist_within_the_packs_passes(registries: tuple[str, ...]) -> None:
    assert validate_stack(admission_registries, platform(registries)) == []


def test_a_team_stack_without_cluster_or_admission_policy_passes() -> None:
    assert validate_stack(admission_registries, []) == []


@pytest.mark.parametrize(("extra", "shown"), [
    ("docker.io/randomuser/", "docker.io/randomuser/"),
    ("docker.io/library/", "docker.io/library/"),
    ("randomuser/", "docker.io/randomuser/"),
    ("ghcr.io/acme/models/", "ghcr.io/acme/models/"),
])
def test_each_prefix_that_widens_the_packs_list_is_reported(extra: str, shown: str) -> None:
    assert validate_stack(admission_registries, platform((*DEFAULT_APPROVED_REGISTRIES, extra))) == [widened(shown)]


def test_a_prefix_the_pack_approves_through_its_config_passes() -> None:
    config = {"approvedRegistries": [*DEFAULT_APPROVED_REGISTRIES, "ghcr.io/acme/"]}
    stack = platform((*DEFAULT_APPROVED_REGISTRIES, "ghcr.io/acme/models/"))
    assert validate_stack(admission_registries, stack, config=config) == []


def test_an_unusable_pack_entry_covers_nothing() -> None:
    assert validate_stack(admission_registries, platform(("docker.io/pytorch/",)),
                          config={"approvedRegistries": ["docker.io/"]}) == [
        "ValidatingAdmissionPolicy 'aip-approved-registries' admits team images under 'docker.io/pytorch/', which the "
        "pack's approvedRegistries (nothing) do not cover; remove it from cluster.approvedRegistries or have it "
        "reviewed into the pack's approvedRegistries."]


def test_a_missing_annotation_is_reported() -> None:
    assert validate_stack(admission_registries, platform(metadata={"name": "aip-approved-registries"})) == [
        "ValidatingAdmissionPolicy 'aip-approved-registries' has no ai-platform.io/approved-registries annotation, "
        "so the registry prefixes it admits cannot be checked against the pack's approvedRegistries; create it "
        "with AdmissionPolicies (infra/components/admission_policies.py), which records them."]


def test_an_annotation_unknown_during_preview_is_skipped() -> None:
    metadata = {"name": "aip-approved-registries",
                "annotations": {"ai-platform.io/approved-registries": UNKNOWN_STRING_VALUE}}
    assert validate_stack(admission_registries, platform(metadata=metadata)) == []


def test_a_cluster_without_the_registries_policy_is_reported() -> None:
    assert validate_stack(admission_registries, platform(admission=False)) == [
        "The stack creates EKS cluster 'aip-prod-cluster-eks' but no ValidatingAdmissionPolicy "
        "'aip-approved-registries', so pods in team namespaces may pull images from any registry; create it with "
        "AdmissionPolicies (infra/components/admission_policies.py)."]


@pytest.mark.parametrize("environment", ["dev", "staging", "prod"])
def test_both_policies_reading_approved_registries_read_one_list(environment: str) -> None:
    # Pack config is per policy: a list widened for one and not the other would let them disagree.
    config = json.loads((ROOT / "policies" / "config" / f"{environment}.json").read_text())
    lists = [config.get(p.name, {}).get("approvedRegistries",
                                        p.config_schema.properties["approvedRegistries"]["default"])
             for p in (admission_registries, approved_images)]
    assert lists[0] == lists[1]
