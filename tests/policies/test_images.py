"""Image rules shared by config, pack and cluster: registry allowlists, the account's own ECR, pinning."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import celpy
import pytest
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

from infra.components.admission_policies import policy_validations
from infra.config.models import ClusterConfig
from infra.versions import CLUSTER_AUTOSCALER_IMAGE_TAGS, CURL, ELASTIC_STACK_VERSION, KSERVE, TORCHSERVE_RUNTIME
from policies.defaults import DEFAULT_APPROVED_REGISTRIES
from policies.images import normalise_prefix, pin_problem, prefix_problem, tag_problem, uncovered_prefixes
from policies.kubernetes.kserve.inferenceservice_approved_images import (
    kubernetes_kserve_inferenceservice_approved_images as approved_images,
)
from policies.kubernetes.kserve.inferenceservice_pinned_images import (
    kubernetes_kserve_inferenceservice_pinned_images as pinned_images,
)
from policies.kubernetes.workloads.pods import INFERENCE_SERVICE
from tests.policies.support import mutate, resource, validate_resource, validate_stack
from tests.policies.test_kubernetes import CUSTOM_ISVC, RUNTIME, SERVING_RUNTIME

ROOT = Path(__file__).resolve().parents[2]
OWN = "123456789012"
OTHER = "210987654321"
DIGEST = "@sha256:" + "a" * 64
IMAGE = "spec.predictor.containers.0.image"
ALLOWED = "docker.io/pytorch/, docker.io/kserve/, 123456789012.dkr.ecr.<region>.amazonaws.com/"
RULE = "allowed: a registry host and at least one repository path segment, ending in '/' " \
       "(docker.io/pytorch/, ghcr.io/acme/models/)"
PIN = ("pin a digest (@sha256: and 64 hex characters) or a version tag of at least major.minor (1.2, 1.2.3, v2.1, "
       "0.12.0-gpu) with no moving word such as latest, main, stable, nightly, snapshot or dev")
PLATFORM_REF = {"name": "acme/ai-platform/prod", "outputs": {
    "modelStoreKmsKeyArn": f"arn:aws:kms:us-east-1:{OWN}:key/08aa3a48-e4ff-d5ed-24f5-aaea11f97e63",
    # Referenced, not held: another account's CI role must not make that account's ECR approved.
    "teams": {"vision": {"ciPrincipalArn": f"arn:aws:iam::{OTHER}:role/vision-prod-deployer"}}}}


def team_stack(isvc: dict[str, Any] = CUSTOM_ISVC, reference: dict[str, Any] | None = PLATFORM_REF) -> list:
    """A team stack as the engine hands it to stack policies: its platform reference and a custom predictor."""
    found = [resource("pulumi:pulumi:StackReference", "platform", reference)] if reference else []
    return [*found, resource(INFERENCE_SERVICE, "ranker", isvc)]


def platform_stack(runtime: dict[str, Any] = SERVING_RUNTIME) -> list:
    key = resource("aws:kms/key:Key", "models", {"arn": f"arn:aws:kms:us-east-1:{OWN}:key/1234abcd"})
    return [key, resource(RUNTIME, "aip-torchserve", runtime)]


def unapproved(image: str) -> str:
    return (f"InferenceService 'ranker' container at spec.predictor.containers[0] uses image '{image}' from an "
            f"unapproved registry (allowed: {ALLOWED}).")


# --- registry allowlist entries (config and pack alike) -----------------------------------------------

@pytest.mark.parametrize(("entry", "problem"), [
    ("", f"is empty, which matches every image; {RULE}"),
    ("docker.io/", f"names the whole registry docker.io, approving every repository in it; {RULE}"),
    ("ghcr.io/", f"names the whole registry ghcr.io, approving every repository in it; {RULE}"),
    ("public.ecr.aws/", f"names the whole registry public.ecr.aws, approving every repository in it; {RULE}"),
    ("index.docker.io/", f"names the whole registry docker.io, approving every repository in it; {RULE}"),
    (f"{OWN}.dkr.ecr.", "does not end with '/', so it would also match longer names (docker.io/pytorch matches "
                        f"docker.io/pytorchevil/...); {RULE}"),
    ("docker.io/pytorch", "does not end with '/', so it would also match longer names (docker.io/pytorch matches "
                          f"docker.io/pytorchevil/...); {RULE}"),
    ("docker.io/*/", f"has '*', which is not a repository path segment (lowercase letters, digits, . _ -); {RULE}"),
    ("docker.io//pytorch/", f"has an empty path segment ('//'); {RULE}"),
])
def test_too_broad_or_malformed_prefixes_are_refused(entry: str, problem: str) -> None:
    assert prefix_problem(entry) == problem


@pytest.mark.parametrize(("entry", "normalised"), [
    ("pytorch/", "docker.io/pytorch/"),
    ("index.docker.io/pytorch/", "docker.io/pytorch/"),
    ("docker.io/kserve/", "docker.io/kserve/"),
    ("ghcr.io/acme/models/", "ghcr.io/acme/models/"),
    ("localhost:5000/team/", "localhost:5000/team/"),
])
def test_narrow_prefixes_are_read_as_the_runtime_reads_them(entry: str, normalised: str) -> None:
    assert prefix_problem(entry) is None
    assert normalise_prefix(entry) == normalised


# --- pinning (config validator and pack alike) --------------------------------------------------------

@pytest.mark.parametrize(("image", "require_digest", "problem"), [
    ("acme/ranker:1.2.3", False, None),
    ("acme/ranker:0.12.0-gpu", False, None),
    ("acme/ranker:v2.1", False, None),
    ("acme/ranker" + DIGEST, True, None),
    ("acme/ranker:main", False, f"uses the tag 'main', which is not a version and moves with every push; {PIN}"),
    ("acme/ranker:stable", False,
     f"uses the tag 'stable', which is not a version and moves with every push; {PIN}"),
    ("acme/ranker:nightly", False,
     f"uses the tag 'nightly', which is not a version and moves with every push; {PIN}"),
    ("acme/ranker:latest", False, f"uses the 'latest' tag; {PIN}"),
    ("localhost:5000/ranker", False, f"has no tag or digest; {PIN}"),
    ("acme/ranker@sha256:abc123", False,
     "has a malformed digest 'sha256:abc123'; a digest is sha256: and 64 lowercase hex characters"),
    ("acme/ranker@sha256:" + "g" * 64, False,
     f"has a malformed digest 'sha256:{'g' * 64}'; a digest is sha256: and 64 lowercase hex characters"),
    ("acme/ranker:1.2.3", True, "is not pinned by digest; pin it by digest (@sha256: and 64 hex characters)"),
])
def test_pin_rule(image: str, require_digest: bool, problem: str | None) -> None:
    assert pin_problem(image, require_digest=require_digest) == problem


@pytest.mark.parametrize(("image", "problem"), [
    ("acme/ranker:main", f"uses the tag 'main', which is not a version and moves with every push; {PIN}"),
    ("acme/ranker:stable", f"uses the tag 'stable', which is not a version and moves with every push; {PIN}"),
    ("acme/ranker@sha256:abc", "has a malformed digest 'sha256:abc'; a digest is sha256: and 64 lowercase hex "
                               "characters"),
])
def test_pinned_images_policy_reports_moving_tags_and_bad_digests(image: str, problem: str) -> None:
    assert validate_resource(pinned_images, INFERENCE_SERVICE, mutate(CUSTOM_ISVC, IMAGE, image)) == [
        f"InferenceService 'res' container at spec.predictor.containers[0] image '{image}' {problem}."]


MOVING = "names a branch, channel or wildcard, not a release"
VERSION_RULE = ("a version tag of at least major.minor (1.2, 1.2.3, v2.1, 0.12.0-gpu) with no moving word such as "
                "latest, main, stable, nightly, snapshot or dev")


@pytest.mark.parametrize(("tag", "problem"), [
    ("1-latest", f"moves with every push: 'latest' {MOVING}"),
    ("0-main", f"moves with every push: 'main' {MOVING}"),
    ("1.0.0-SNAPSHOT", f"moves with every push: 'SNAPSHOT' {MOVING}"),
    ("2-nightly", f"moves with every push: 'nightly' {MOVING}"),
    ("3.1-dev", f"moves with every push: 'dev' {MOVING}"),
    ("1.2-stable", f"moves with every push: 'stable' {MOVING}"),
    ("2.4.1_master", f"moves with every push: 'master' {MOVING}"),
    ("1.2+edge", f"moves with every push: 'edge' {MOVING}"),
    ("1.2.x", f"moves with every push: 'x' {MOVING}"),
    ("1.2latest", f"moves with every push: 'latest' {MOVING}"),
    ("0.13.0.dev0", f"moves with every push: 'dev' {MOVING}"),
    ("1.4.0-gpu-Release", f"moves with every push: 'Release' {MOVING}"),
    ("1", "names a major version only and moves to each new 1.x release"),
    ("v1", "names a major version only and moves to each new 1.x release"),
    ("2-gpu", "names a major version only and moves to each new 2.x release"),
    ("MAIN", "is not a version and moves with every push"),
    ("gpu", "is not a version"),
    ("20240101", "is not a version"),
    ("1.2" + "0" * 127, "is longer than the 128 characters a tag may have"),
])
def test_moving_and_major_only_tags_are_not_versions(tag: str, problem: str) -> None:
    assert tag_problem(tag) == problem
    assert pin_problem(f"acme/ranker:{tag}") == f"uses the tag '{tag}', which {problem}; {PIN}"


@pytest.mark.parametrize("tag", [
    "1.2", "v2.1", "1.2.3", "0.12.0-gpu", "2.1.0-cuda12.1", "1.0.0-rc1", "1.0.0-rc.1", "2.0.0-beta.2",
    "v1.57.1-eksbuild.1", "2.1.0-x86_64", "1.2-linux-x64", "1.2-headless",
])
def test_exact_versions_stay_versions(tag: str) -> None:
    assert tag_problem(tag) is None
    assert pin_problem(f"acme/ranker:{tag}") is None


def test_the_platforms_own_pins_are_versions() -> None:
    tags = [TORCHSERVE_RUNTIME.tag, TORCHSERVE_RUNTIME.gpu_tag, KSERVE.version, CURL.tag, ELASTIC_STACK_VERSION,
            *CLUSTER_AUTOSCALER_IMAGE_TAGS.values()]
    assert {t: tag_problem(t) for t in tags} == dict.fromkeys(tags)


def test_moving_tags_are_reported_by_the_pack() -> None:
    image = f"{OWN}.dkr.ecr.us-east-1.amazonaws.com/ranker:1.0.0-SNAPSHOT"
    assert validate_resource(pinned_images, INFERENCE_SERVICE, mutate(CUSTOM_ISVC, IMAGE, image)) == [
        f"InferenceService 'res' container at spec.predictor.containers[0] image '{image}' uses the tag "
        f"'1.0.0-SNAPSHOT', which moves with every push: 'SNAPSHOT' {MOVING}; {PIN}."]


@pytest.mark.parametrize(("version", "problem"), [
    ("main", "is not a version and moves with every push"),
    ("v1", "names a major version only and moves to each new 1.x release"),
    ("0.12-latest", f"moves with every push: 'latest' {MOVING}"),
])
def test_runtime_version_must_be_a_version(version: str, problem: str) -> None:
    isvc = mutate(CUSTOM_ISVC, "spec.predictor.model", {"runtime": "aip-torchserve", "runtimeVersion": version})
    assert validate_resource(pinned_images, INFERENCE_SERVICE, isvc) == [
        f"InferenceService 'res' spec.predictor.model.runtimeVersion '{version}' {problem}; pin {VERSION_RULE}."]
    exact = mutate(CUSTOM_ISVC, "spec.predictor.model", {"runtime": "aip-torchserve", "runtimeVersion": "0.12.0-gpu"})
    assert validate_resource(pinned_images, INFERENCE_SERVICE, exact) == []


def prod_config(policy: str) -> dict[str, Any]:
    config = json.loads((ROOT / "policies" / "config" / "prod.json").read_text())[policy]
    return {k: v for k, v in config.items() if k != "enforcementLevel"}


def test_prod_requires_team_images_by_digest_but_keeps_the_platform_runtime_tag() -> None:
    config = prod_config(pinned_images.name)
    assert config == {"requireDigest": True}
    tagged = mutate(CUSTOM_ISVC, IMAGE, f"{OWN}.dkr.ecr.us-east-1.amazonaws.com/ranker:1.2.3")
    assert validate_resource(pinned_images, INFERENCE_SERVICE, tagged, config=config) == [
        "InferenceService 'res' container at spec.predictor.containers[0] image "
        f"'{OWN}.dkr.ecr.us-east-1.amazonaws.com/ranker:1.2.3' is not pinned by digest; pin it by digest "
        "(@sha256: and 64 hex characters)."]
    assert validate_resource(pinned_images, INFERENCE_SERVICE, tagged) == []
    assert validate_resource(pinned_images, INFERENCE_SERVICE, CUSTOM_ISVC, config=config) == []
    assert validate_resource(pinned_images, RUNTIME, SERVING_RUNTIME, config=config) == []
    team_runtime = "kubernetes:serving.kserve.io/v1alpha1:ServingRuntime"
    assert validate_resource(pinned_images, team_runtime, SERVING_RUNTIME, config=config) == [
        "ServingRuntime 'res' container at spec.containers[0] image 'pytorch/torchserve-kfs:0.12.0' is not pinned "
        "by digest; pin it by digest (@sha256: and 64 hex characters)."]


# --- approved registries, the account's own ECR -------------------------------------------------------

def test_baselines_pass() -> None:
    assert validate_stack(approved_images, team_stack()) == []
    assert validate_stack(approved_images, platform_stack()) == []


@pytest.mark.parametrize("image", [
    f"{OWN}.dkr.ecr.us-east-1.amazonaws.com/ranker{DIGEST}",
    f"{OWN}.dkr.ecr.eu-west-1.amazonaws.com/search/ranker:1.0.0",
    "pytorch/torchserve-kfs:0.12.0",
    "index.docker.io/kserve/storage-initializer:v0.20.0",
])
def test_own_account_ecr_and_approved_prefixes_are_allowed(image: str) -> None:
    assert validate_stack(approved_images, team_stack(mutate(CUSTOM_ISVC, IMAGE, image))) == []


@pytest.mark.parametrize("image", [
    f"{OTHER}.dkr.ecr.us-east-1.amazonaws.com/ranker{DIGEST}",
    f"{OWN}.dkr.ecr.us-east-1.amazonaws.com.evil.example/ranker{DIGEST}",
    "docker.io/pytorchevil/miner:1.0.0",
    "ghcr.io/someone/ranker:1.0.0",
    "public.ecr.aws/nginx/nginx:1.27.0",
])
def test_other_registries_and_other_accounts_ecr_are_refused(image: str) -> None:
    assert validate_stack(approved_images, team_stack(mutate(CUSTOM_ISVC, IMAGE, image))) == [unapproved(image)]


def test_without_an_account_of_its_own_no_ecr_is_approved() -> None:
    image = f"{OWN}.dkr.ecr.us-east-1.amazonaws.com/ranker{DIGEST}"
    assert validate_stack(approved_images, team_stack(reference=None)) == [
        f"InferenceService 'ranker' container at spec.predictor.containers[0] uses image '{image}' from an "
        "unapproved registry (allowed: docker.io/pytorch/, docker.io/kserve/)."]


def test_arns_unknown_during_preview_are_skipped() -> None:
    pending = resource("aws:s3/bucket:Bucket", "pending", {"arn": UNKNOWN_STRING_VALUE})
    assert validate_stack(approved_images, [pending, *platform_stack()]) == []


@pytest.mark.parametrize(("entries", "messages"), [
    ([""], [f"Pack config approvedRegistries entry '' is empty, which matches every image; {RULE}."]),
    (["docker.io/"], ["Pack config approvedRegistries entry 'docker.io/' names the whole registry docker.io, "
                      f"approving every repository in it; {RULE}."]),
    (["ghcr.io/"], ["Pack config approvedRegistries entry 'ghcr.io/' names the whole registry ghcr.io, "
                    f"approving every repository in it; {RULE}."]),
    (["ghcr.io/someone"], ["Pack config approvedRegistries entry 'ghcr.io/someone' does not end with '/', so it "
                           "would also match longer names (docker.io/pytorch matches docker.io/pytorchevil/...); "
                           f"{RULE}."]),
    (["pytorch/", "docker.io/pytorch/"], ["Pack config approvedRegistries lists docker.io/pytorch/ more than once "
                                          "(Docker Hub short forms such as pytorch/ are docker.io/pytorch/); list "
                                          "each prefix once."]),
])
def test_a_too_broad_pack_allowlist_is_itself_reported_and_not_trusted(entries: list[str],
                                                                       messages: list[str]) -> None:
    image = "ghcr.io/someone/ranker:1.0.0"
    found = validate_stack(approved_images, team_stack(mutate(CUSTOM_ISVC, IMAGE, image)),
                           config={"approvedRegistries": entries})
    assert found[:-1] == messages
    assert found[-1].startswith(f"InferenceService 'ranker' container at spec.predictor.containers[0] uses image "
                                f"'{image}' from an unapproved registry")


def test_an_allowlist_that_is_no_list_is_reported_and_approves_nothing_but_the_account_ecr() -> None:
    image = "pytorch/torchserve-kfs:0.12.0"
    found = validate_stack(approved_images, team_stack(mutate(CUSTOM_ISVC, IMAGE, image)),
                           config={"approvedRegistries": "docker.io/"})
    assert found == ["Pack config approvedRegistries is 'docker.io/'; it must be a list of prefixes.",
                     f"InferenceService 'ranker' container at spec.predictor.containers[0] uses image '{image}' from "
                     f"an unapproved registry (allowed: {OWN}.dkr.ecr.<region>.amazonaws.com/)."]


# --- the cluster's allowlist against the pack's ---------------------------------------------------------

@pytest.mark.parametrize(("enforced", "approved", "uncovered"), [
    (["docker.io/pytorch/", "docker.io/kserve/"], DEFAULT_APPROVED_REGISTRIES, []),
    (["pytorch/", "index.docker.io/kserve/"], DEFAULT_APPROVED_REGISTRIES, []),
    (["docker.io/pytorch/serve/"], ["pytorch/"], []),
    (["docker.io/library/nginx/"], ["docker.io/library/"], []),
    (["docker.io/randomuser/", "randomuser/"], DEFAULT_APPROVED_REGISTRIES, ["docker.io/randomuser/"]),
    (["docker.io/library/"], DEFAULT_APPROVED_REGISTRIES, ["docker.io/library/"]),
    (["docker.io/pytorchevil/"], ["docker.io/pytorch/"], ["docker.io/pytorchevil/"]),
    (["docker.io/pytorch/"], ["docker.io/pytorch/serve/"], ["docker.io/pytorch/"]),
    # An unusable pack entry covers nothing; an unusable enforced entry is reported as written.
    (["docker.io/pytorch/"], ["docker.io/"], ["docker.io/pytorch/"]),
    (["docker.io/"], ["docker.io/"], ["docker.io/"]),
])
def test_an_approved_prefix_covers_itself_and_what_lies_under_it(enforced: list[str], approved: list[str],
                                                                  uncovered: list[str]) -> None:
    assert uncovered_prefixes(enforced, approved) == uncovered


# --- one default list; config, pack and cluster decide alike ------------------------------------------

def test_config_pack_and_admission_share_one_default_list() -> None:
    assert ClusterConfig().approved_registries == DEFAULT_APPROVED_REGISTRIES
    assert approved_images.config_schema.properties["approvedRegistries"]["default"] == list(
        DEFAULT_APPROVED_REGISTRIES)
    assert all(prefix_problem(p) is None and normalise_prefix(p) == p for p in DEFAULT_APPROVED_REGISTRIES)
    message = policy_validations(ClusterConfig().approved_registries, (OWN,))["aip-approved-registries"][0]["message"]
    assert message == f"images must come from an approved registry ({ALLOWED})"


def admitted(image: str) -> bool:
    env = celpy.Environment()
    check = policy_validations(DEFAULT_APPROVED_REGISTRIES, (OWN,))["aip-approved-registries"][0]
    pod = {"spec": {"containers": [{"name": "c", "image": image}]}}
    return bool(env.program(env.compile(check["expression"])).evaluate({"object": celpy.json_to_cel(pod)}))


PLATFORM_TEAM_IMAGES = [f"{TORCHSERVE_RUNTIME.image}:{TORCHSERVE_RUNTIME.tag}",
                        f"{TORCHSERVE_RUNTIME.image}:{TORCHSERVE_RUNTIME.gpu_tag}",
                        f"kserve/storage-initializer:{KSERVE.version}"]


@pytest.mark.parametrize("image", [
    *PLATFORM_TEAM_IMAGES, "docker.io/pytorch/torchserve-kfs:0.12.0", "index.docker.io/kserve/agent:v0.20.0",
    f"{OWN}.dkr.ecr.us-west-2.amazonaws.com/vision/digits{DIGEST}", f"{OTHER}.dkr.ecr.us-east-1.amazonaws.com/x:1",
    "docker.io/pytorchevil/x:1", "pytorchevil/x:1", "nginx:1.27.0", "ghcr.io/kserve/x:1", "public.ecr.aws/x/y:1",
    "evil.example/pytorch/x:1",
])
def test_admission_and_pack_decide_every_image_alike(image: str) -> None:
    pack = validate_stack(approved_images, team_stack(mutate(CUSTOM_ISVC, IMAGE, image))) == []
    assert admitted(image) == pack
    if image in PLATFORM_TEAM_IMAGES:
        assert pack, f"the platform's own serving image {image} must be approved by default"
