"""Serving on the cluster: team model config, InferenceService specs (checked against KServe's CRD), uploads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pulumi_kubernetes as k8s
import pytest

from infra.components.gpu_node_pool import pool_contract
from infra.components.inference_service import (
    ModelService,
    ModelServiceArgs,
    artifact_prefix,
    inference_service_manifest,
)
from infra.components.kserve import KServe, KServeArgs, kserve_values, torchserve_runtime_spec
from infra.config import ConfigError, GpuPoolConfig, parse_stack_config
from infra.config.serving import ModelDeployment
from infra.serving.manifest import PackagedModel
from infra.versions import KSERVE, KSERVE_CRD, TORCHSERVE_RUNTIME
from tests.conftest import only
from tests.crd_schemas import validate_custom_resource


@pytest.fixture(autouse=True)
def known_models(monkeypatch):
    monkeypatch.setattr("infra.config.serving.model_names", lambda: ("digits", "ranker"))


def deployment(**kw: Any) -> ModelDeployment:
    return ModelDeployment.model_validate({"name": "digits", **kw})


POOL = pool_contract(GpuPoolConfig.model_validate({"name": "l4", "instanceTypes": ["g6.xlarge"], "maxSize": 2}))
URI = "s3://models/teams/vision/models/digits/0123456789ab/"
STABLE = "s3://models/teams/vision/models/digits/ba9876543210/"


def test_cpu_model_uses_the_pinned_torchserve_runtime_and_team_identity():
    manifest = inference_service_manifest("vision", deployment(), URI, None, None)
    predictor = manifest["spec"]["predictor"]
    assert manifest["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Standard"
    assert predictor["serviceAccountName"] == "model-serving"
    assert predictor["model"]["runtime"] == TORCHSERVE_RUNTIME.name
    assert predictor["model"]["runtimeVersion"] == TORCHSERVE_RUNTIME.tag
    assert predictor["model"]["storageUri"] == URI
    assert predictor["model"]["resources"]["limits"] == {"cpu": "1", "memory": "2Gi"}
    assert predictor["annotations"]["prometheus.io/port"] == "8082"
    assert "nodeSelector" not in predictor and "tolerations" not in predictor


def test_gpu_model_requests_gpus_and_lands_on_its_pool():
    model = deployment(resources={"cpu": "4", "memory": "16Gi", "gpu": 1}, gpuPool="l4", minReplicas=2,
                       maxReplicas=6, scaleMetric="memory", scaleTarget=80)
    predictor = inference_service_manifest("vision", model, URI, None, POOL)["spec"]["predictor"]
    assert predictor["model"]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert predictor["model"]["runtimeVersion"] == TORCHSERVE_RUNTIME.gpu_tag
    assert predictor["nodeSelector"] == {"ai-platform.io/gpu-pool": "l4"}
    assert predictor["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Equal", "value": "true",
                                         "effect": "NoSchedule"}]
    assert (predictor["minReplicas"], predictor["maxReplicas"], predictor["scaleMetric"], predictor["scaleTarget"]) \
        == (2, 6, "memory", 80)


def test_canary_keeps_the_stable_version_as_main_predictor():
    model = deployment(canary={"trafficPercent": 10, "stableVersion": "ba9876543210"})
    spec = inference_service_manifest("vision", model, URI, STABLE, None, version="0123456789ab")["spec"]
    assert spec["predictor"]["model"]["storageUri"] == STABLE
    assert spec["canary"] == [{"trafficPercent": 10, "predictor": {
        "name": "canary",
        "labels": {"ai-platform.io/track": "canary", "ai-platform.io/model-version": "0123456789ab"},
        "terminationGracePeriodSeconds": spec["predictor"]["terminationGracePeriodSeconds"],
        "model": {"name": "kserve-container", **spec["predictor"]["model"], "storageUri": URI}}}]


def test_kserve_runtime_runs_the_teams_image_non_root():
    model = deployment(runtime="kserve", protocol="v2", image="registry.example.com/vision/digits:1.4.2")
    container = inference_service_manifest("vision", model, None, None, None)["spec"]["predictor"]["containers"][0]
    assert container["image"] == "registry.example.com/vision/digits:1.4.2"
    # The image's CMD names the weights folder; args replace CMD, so they must name it too.
    assert container["args"][container["args"].index("--model-dir") + 1] == "/models/digits"
    assert container["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    # Asked for no gRPC: the predictor serves none, and declares no gRPC port.
    assert container["args"][container["args"].index("--grpc-port") + 1] == "0"
    assert [p["name"] for p in container["ports"]] == ["http"]


def test_a_grpc_v2_model_adds_the_h2c_port_after_http():
    model = deployment(runtime="kserve", protocol="grpc-v2", image="registry.example.com/vision/digits:1.4.2")
    predictor = inference_service_manifest("vision", model, None, None, None)["spec"]["predictor"]
    container = predictor["containers"][0]
    # KServe (Standard mode) points the Service's port 80 and the default readiness probe at the first port:
    # REST stays there; gRPC gets Service port 8081 with appProtocol kubernetes.io/h2c.
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"},
                                  {"name": "h2c", "containerPort": 8081, "protocol": "TCP"}]
    args = container["args"]
    assert args[args.index("--http-port") + 1] == "8080" and args[args.index("--grpc-port") + 1] == "8081"
    # /metrics is scraped on the HTTP port, as for every kserve predictor.
    assert predictor["annotations"]["prometheus.io/port"] == "8080"
    validate_custom_resource(inference_service_manifest("vision", model, None, None, None))


@pytest.mark.parametrize("entry", [
    {},
    {"resources": {"gpu": 1}, "gpuPool": "l4"},
    {"canary": {"trafficPercent": 25, "stableVersion": "ba9876543210"}},
    {"runtime": "kserve", "image": "registry.example.com/vision/digits@sha256:" + "a" * 64},
    {"runtime": "kserve", "protocol": "grpc-v2", "image": "registry.example.com/vision/digits@sha256:" + "a" * 64},
], ids=["cpu", "gpu", "canary", "kserve-runtime", "kserve-grpc-v2"])
def test_inference_services_use_only_fields_of_kserves_api(entry):
    validate_custom_resource(inference_service_manifest("vision", deployment(**entry), URI, STABLE, POOL))


def test_a_typo_in_the_spec_fails_the_crd_check():
    import jsonschema

    manifest = inference_service_manifest("vision", deployment(), URI, None, None)
    manifest["spec"]["predictor"]["minReplica"] = 1
    with pytest.raises(jsonschema.ValidationError, match="minReplica"):
        validate_custom_resource(manifest)


def test_serving_runtime_matches_its_crd_and_is_non_root():
    runtime = {"apiVersion": "serving.kserve.io/v1alpha1", "kind": "ClusterServingRuntime",
               "metadata": {"name": TORCHSERVE_RUNTIME.name}, "spec": torchserve_runtime_spec()}
    validate_custom_resource(runtime)
    container = runtime["spec"]["containers"][0]
    assert container["image"] == f"{TORCHSERVE_RUNTIME.image}:{TORCHSERVE_RUNTIME.tag}"
    assert container["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}


def test_kserve_runs_standard_mode_without_public_ingress():
    controller = kserve_values("us-east-1")["kserve"]["controller"]
    assert controller["deploymentMode"] == "Standard"
    assert controller["gateway"]["disableIngressCreation"] is True


PIN = ("pin a digest (@sha256: and 64 hex characters) or a version tag of at least major.minor (1.2, 1.2.3, v2.1, "
       "0.12.0-gpu) with no moving word such as latest, main, stable, nightly, snapshot or dev")
BAD_MODELS = [
    ({"name": "mnist"}, "models[0].name", "is not a model folder under model-handlers/; available: digits, ranker"),
    ({"name": "digits", "resources": {"gpu": 1}}, "models[0].gpuPool",
     "is required when resources.gpu is set (the pool whose nodes have the GPUs)"),
    ({"name": "digits", "minReplicas": 3, "maxReplicas": 1}, "models[0].maxReplicas",
     "must be at least minReplicas (3)"),
    ({"name": "digits", "runtime": "kserve"}, "models[0].image",
     "is required for the kserve runtime (the predictor image your CI builds)"),
    ({"name": "digits", "runtime": "kserve", "image": "digits:latest"}, "models[0].image",
     f"uses the 'latest' tag; {PIN}"),
    ({"name": "digits", "runtime": "kserve", "image": "acme/digits:main"}, "models[0].image",
     f"uses the tag 'main', which is not a version and moves with every push; {PIN}"),
    ({"name": "digits", "runtime": "kserve", "image": "acme/digits:1.0.0-SNAPSHOT"}, "models[0].image",
     "uses the tag '1.0.0-SNAPSHOT', which moves with every push: 'SNAPSHOT' names a branch, channel or wildcard, "
     f"not a release; {PIN}"),
    ({"name": "digits", "runtime": "kserve", "image": "acme/digits:v1"}, "models[0].image",
     f"uses the tag 'v1', which names a major version only and moves to each new 1.x release; {PIN}"),
    ({"name": "digits", "runtime": "kserve", "image": "acme/digits@sha256:abc"}, "models[0].image",
     "has a malformed digest 'sha256:abc'; a digest is sha256: and 64 lowercase hex characters"),
    ({"name": "digits", "resources": {"cpu": "lots"}}, "models[0].resources.cpu",
     "must be a Kubernetes CPU quantity such as 500m or 2"),
    ({"name": "digits", "scaleMetric": "rps"}, "models[0].scaleMetric", "must be one of: cpu, memory"),
    ({"name": "digits", "protocol": "v2"}, "models[0].protocol",
     "must be one of: v1 for the torchserve runtime (v2 is served by the kserve runtime)"),
    ({"name": "digits", "protocol": "grpc-v2"}, "models[0].protocol",
     "grpc-v2 is only for the kserve runtime (your predictor serves gRPC v2 beside REST); the torchserve runtime "
     "serves v1 over REST"),
    ({"name": "digits", "runtime": "kserve", "image": "acme/digits:1.2.3", "protocol": "grpc"}, "models[0].protocol",
     "must be one of: v1, v2, grpc-v2"),
]


@pytest.mark.parametrize(("entry", "key", "message"), BAD_MODELS, ids=[b[1] + ":" + b[2][:20] for b in BAD_MODELS])
def test_bad_model_entries_are_config_errors(entry, key, message):
    values = {"aws:region": "us-east-1", "ai-platform:environment": "dev", "ai-platform:costCenter": "cc",
              "ai-platform:dataClassification": "internal", "ai-platform:team": "vision",
              "ai-platform:platformStack": "acme/ai-platform/dev", "ai-platform:models": json.dumps([entry])}
    with pytest.raises(ConfigError) as caught:
        parse_stack_config(values, project="ai-platform", stack="vision-dev")
    assert [(p.key, p.message) for p in caught.value.problems] == [(f"ai-platform:{key}", message)]


def test_kserve_component_pins_charts_and_orders_installs(run_component):
    def build():
        KServe("ks", KServeArgs(region="us-east-1", provider=k8s.Provider("k8s", kubeconfig="{}")))

    result = run_component(build)
    releases = {r.inputs["name"]: r for r in result.of_type("kubernetes:helm.sh/v3:Release")}
    assert releases["kserve-crd"].inputs["chart"] == KSERVE_CRD.chart
    assert releases["kserve"].inputs["version"] == KSERVE.version
    assert releases["cert-manager"].inputs["values"]["crds"]["enabled"] is True
    depends = releases["kserve"].options["dependsOn"]
    assert any(d.endswith("::ks-cert-manager") for d in depends) and any(d.endswith("::ks-crds") for d in depends)
    runtime = only(result, "kubernetes:serving.kserve.io/v1alpha1:ClusterServingRuntime")
    assert runtime.inputs["spec"]["containers"][0]["image"].endswith(TORCHSERVE_RUNTIME.tag)


def test_model_service_uploads_content_addressed_archives_and_keeps_old_ones(run_component, tmp_path: Path):
    files = {}
    for relative in ("config/config.properties", "model-store/digits.mar"):
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(relative)
        files[relative] = path
    package = PackagedModel(version="0123456789ab", files=files,
                            sha256={"config/config.properties": "a" * 64, "model-store/digits.mar": "b" * 64})

    def build():
        ModelService("svc", ModelServiceArgs(team="vision", model=deployment(), package=package, bucket="models",
                                             kms_key_arn="arn:aws:kms:us-east-1:123456789012:key/models",
                                             team_prefix="teams/vision/", pool=None,
                                             provider=k8s.Provider("k8s", kubeconfig="{}")))

    result = run_component(build)
    uploads = result.of_type("aws:s3/bucketObjectv2:BucketObjectv2")
    prefix = artifact_prefix("teams/vision/", "digits", "0123456789ab")
    assert sorted(u.inputs["key"] for u in uploads) == [prefix + "config/config.properties",
                                                         prefix + "model-store/digits.mar"]
    assert all(u.options["retainOnDelete"] and u.inputs["serverSideEncryption"] == "aws:kms" for u in uploads)
    assert {u.inputs["kmsKeyId"] for u in uploads} == {"arn:aws:kms:us-east-1:123456789012:key/models"}
    assert {u.inputs["sourceHash"] for u in uploads} == {"a" * 64, "b" * 64}
    isvc = only(result, "kubernetes:serving.kserve.io/v1beta1:InferenceService")
    assert isvc.inputs["spec"]["predictor"]["model"]["storageUri"] == f"s3://models/{prefix}"
    assert len(isvc.options["dependsOn"]) == 2
