"""A model's `version` pin (what `aip promote` and `aip rollback` write): its config rules, the version the predictor
serves, and a deploy that serves a stored version without uploading or even packaging anything."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pytest

from infra.components.inference_service import ModelService, ModelServiceArgs, artifact_prefix, served_version
from infra.config import ConfigError, parse_stack_config
from infra.config.serving import ModelDeployment
from infra.serving.manifest import MANIFEST_ENV, Manifest, PackagedModel, write_manifest
from infra.team_stack import packaged
from tests.conftest import only

PACKAGED, PINNED = "0123456789ab", "ba9876543210"
ISVC = "kubernetes:serving.kserve.io/v1beta1:InferenceService"
UPLOAD = "aws:s3/bucketObjectv2:BucketObjectv2"


def team_values(*models: dict[str, Any]) -> dict[str, str]:
    return {"aws:region": "us-east-1", "ai-platform:environment": "prod", "ai-platform:costCenter": "vision-ml",
            "ai-platform:dataClassification": "confidential", "ai-platform:team": "vision",
            "ai-platform:platformStack": "acme/ai-platform/prod", "ai-platform:models": json.dumps(list(models))}


def package(tmp_path: Path, version: str = PACKAGED) -> PackagedModel:
    files = {}
    for relative in ("config/config.properties", "model-store/digits.mar"):
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(relative)
        files[relative] = path
    return PackagedModel(version=version, files=files, sha256={r: "a" * 64 for r in files})


@pytest.mark.parametrize(("entry", "message"), [
    ({"name": "digits", "version": PINNED, "canary": {"trafficPercent": 10, "stableVersion": PINNED}},
     "is not used beside canary: with a canary, canary.stableVersion serves the stable share and the packaged version "
     "the canary; `aip promote` or `aip rollback` ends the canary and pins one of them"),
    ({"name": "digits", "runtime": "kserve", "image": "registry.example.com/vision/digits:1.4.2", "version": PINNED},
     "is only for the torchserve runtime (a kserve predictor's version is its image)"),
    ({"name": "digits", "version": "v1.4"}, "must match ^[0-9a-f]{12,64}$"),
])
def test_a_pin_is_a_packaged_version_of_a_torchserve_model_without_canary(entry, message):
    with pytest.raises(ConfigError) as caught:
        parse_stack_config(team_values(entry), project="ai-platform", stack="vision-prod")
    assert [(p.key, p.message) for p in caught.value.problems] == [("ai-platform:models[0].version", message)]


@pytest.mark.parametrize(("entry", "packaged_version", "served"), [
    ({}, PACKAGED, PACKAGED),
    ({"version": PINNED}, PACKAGED, PINNED),
    ({"version": PINNED}, None, PINNED),
    ({"canary": {"trafficPercent": 10, "stableVersion": PINNED}}, PACKAGED, PACKAGED),
    ({"runtime": "kserve", "image": "registry.example.com/vision/digits:1.4.2"}, None, None),
])
def test_the_served_version_is_the_pin_else_the_package(entry, packaged_version, served, tmp_path: Path):
    model = ModelDeployment.model_validate({"name": "digits", **entry})
    found = package(tmp_path, packaged_version) if packaged_version else None
    assert served_version(model, found) == served


def model_service(model: ModelDeployment, found: PackagedModel | None):
    def build() -> None:
        ModelService("svc", ModelServiceArgs(
            team="vision", model=model, package=found, bucket="models",
            kms_key_arn="arn:aws:kms:us-east-1:123456789012:key/models", team_prefix="teams/vision/", pool=None,
            provider=k8s.Provider("k8s", kubeconfig="{}")))
    return build


def test_a_pin_other_than_the_package_serves_the_stored_version_and_uploads_nothing(run_component, tmp_path: Path):
    model = ModelDeployment.model_validate({"name": "digits", "version": PINNED})
    result = run_component(model_service(model, package(tmp_path)))
    assert result.of_type(UPLOAD) == []
    predictor = only(result, ISVC).inputs["spec"]["predictor"]
    assert predictor["model"]["storageUri"] == "s3://models/" + artifact_prefix("teams/vision/", "digits", PINNED)
    assert predictor["labels"]["ai-platform.io/model-version"] == PINNED


def test_a_pin_of_the_packaged_version_uploads_it_as_an_unpinned_model_would(run_component, tmp_path: Path):
    model = ModelDeployment.model_validate({"name": "digits", "version": PACKAGED})
    result = run_component(model_service(model, package(tmp_path)))
    prefix = artifact_prefix("teams/vision/", "digits", PACKAGED)
    assert sorted(u.inputs["key"] for u in result.of_type(UPLOAD)) == [prefix + "config/config.properties",
                                                                       prefix + "model-store/digits.mar"]
    assert only(result, ISVC).inputs["spec"]["predictor"]["model"]["storageUri"] == f"s3://models/{prefix}"


def config(*models: dict[str, Any]):
    return parse_stack_config(team_values(*models), project="ai-platform", stack="vision-prod")


def test_a_deploy_of_pinned_models_needs_no_package(monkeypatch, tmp_path: Path):
    monkeypatch.setenv(MANIFEST_ENV, str(tmp_path / "missing" / "manifest.json"))
    assert packaged(config({"name": "digits", "version": PINNED})) == {}
    with pytest.raises(pulumi.RunError, match=r"manifest\.json does not exist: run `aip package` first"):
        packaged(config({"name": "digits"}))


def test_only_the_packages_a_deploy_uploads_are_handed_on(monkeypatch, tmp_path: Path):
    manifest = tmp_path / "manifest.json"
    write_manifest(manifest, Manifest(models={"digits": package(tmp_path), "ranker": package(tmp_path / "r")}))
    monkeypatch.setenv(MANIFEST_ENV, str(manifest))
    assert list(packaged(config({"name": "digits", "version": PINNED}, {"name": "ranker"}))) == ["ranker"]
    assert list(packaged(config({"name": "digits", "version": PACKAGED}, {"name": "ranker"}))) == ["digits", "ranker"]
