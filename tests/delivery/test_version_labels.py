"""Every predictor pod says which version it serves on which track, and the team's PodMonitor turns that into the
series labels `track` and `model_version` that canary analysis reads."""

from __future__ import annotations

import pytest

from infra.components import team_monitoring
from infra.components.inference_service import inference_service_manifest
from infra.config.serving import ModelDeployment
from tests.crd_schemas import validate_custom_resource
from tests.infra.test_monitoring import relabel

URI = "s3://models/teams/vision/models/digits/0123456789abcdef/"
STABLE_URI = "s3://models/teams/vision/models/digits/ba9876543210fedc/"
VERSION, STABLE_VERSION = "0123456789abcdef", "ba9876543210fedc"
TRACK, MODEL_VERSION = "ai-platform.io/track", "ai-platform.io/model-version"


@pytest.fixture(autouse=True)
def known_models(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("infra.config.serving.model_names", lambda: ("digits", "ranker"))


def deployment(**fields: object) -> ModelDeployment:
    return ModelDeployment.model_validate({"name": "digits", **fields})


def test_a_model_without_canary_labels_its_pods_stable_with_the_packaged_version():
    spec = inference_service_manifest("vision", deployment(), URI, None, None, version=VERSION)["spec"]
    assert spec["predictor"]["labels"] == {TRACK: "stable", MODEL_VERSION: VERSION}


def test_with_a_canary_each_predictor_labels_its_own_version():
    model = deployment(canary={"trafficPercent": 10, "stableVersion": STABLE_VERSION})
    manifest = inference_service_manifest("vision", model, URI, STABLE_URI, None, version=VERSION)
    assert manifest["spec"]["predictor"]["labels"] == {TRACK: "stable", MODEL_VERSION: STABLE_VERSION}
    assert manifest["spec"]["canary"][0]["predictor"]["labels"] == {TRACK: "canary", MODEL_VERSION: VERSION}
    validate_custom_resource(manifest)


def test_a_kserve_runtime_model_has_a_track_and_no_packaged_version():
    model = deployment(runtime="kserve", image="registry.example.com/vision/digits:1.4.2")
    predictor = inference_service_manifest("vision", model, None, None, None)["spec"]["predictor"]
    assert predictor["labels"] == {TRACK: "stable"}


def pod(labels: dict[str, str]) -> dict[str, str]:
    """Service-discovery labels of a TorchServe predictor pod's metrics port."""
    found = {"__meta_kubernetes_pod_container_port_name": "metrics",
             "__meta_kubernetes_pod_label_serving_kserve_io_inferenceservice": "digits"}
    found.update({team_monitoring.pod_label_meta(name): value for name, value in labels.items()})
    return found


def test_the_pod_monitor_makes_track_and_model_version_target_labels():
    endpoint = team_monitoring.pod_monitor_spec("vision")["podMetricsEndpoints"][0]
    labels = relabel(pod({TRACK: "canary", MODEL_VERSION: VERSION}), endpoint["relabelings"])
    assert labels is not None
    assert {k: labels[k] for k in ("team", "inferenceservice", "track", "model_version")} == {
        "team": "vision", "inferenceservice": "digits", "track": "canary", "model_version": VERSION}


def test_a_pod_without_the_labels_gets_no_track_or_version():
    """An empty target label is no label: TorchServe's own `model_version` is then kept."""
    endpoint = team_monitoring.pod_monitor_spec("vision")["podMetricsEndpoints"][0]
    labels = relabel(pod({}), endpoint["relabelings"])
    assert labels is not None
    assert not labels.get("track") and not labels.get("model_version")
