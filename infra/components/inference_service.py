"""One team model served by KServe in Standard (raw Deployment) mode, from its packaged artifacts."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra.components.failover import DrainTiming, disruption_budget_spec, drain_timing, zone_spread
from infra.components.model_autoscaling import (
    CANARY_PREDICTOR,
    SCALED_OBJECT_API_VERSION,
    SCALED_OBJECT_KIND,
    predictor_deployments,
    scaled_object_manifest,
)
from infra.components.pod_security import restricted_pod_security_context, restricted_security_context
from infra.components.team_workspace import GRPC_INFERENCE_PORT, INFERENCE_PORT, SERVING_SERVICE_ACCOUNT
from infra.config.serving import GRPC_PROTOCOL, ModelDeployment
from infra.serving.config_properties import CLUSTER_INFERENCE_PORT, CLUSTER_METRICS_PORT
from infra.serving.manifest import PackagedModel
from infra.versions import TORCHSERVE_RUNTIME

# TorchServe exports its metrics on their own port; a KServe predictor on its HTTP port (/metrics).
METRICS_PORT = {"torchserve": CLUSTER_METRICS_PORT, "kserve": CLUSTER_INFERENCE_PORT}
# KServe labels every predictor pod (canary pods too) with its InferenceService's name.
ISVC_POD_LABEL = "serving.kserve.io/inferenceservice"
# Ours, on every predictor pod: which packaged version it serves and on which track (the team's PodMonitor turns
# them into the series labels `model_version` and `track` that canary analysis compares).
MODEL_VERSION_POD_LABEL = "ai-platform.io/model-version"
TRACK_POD_LABEL = "ai-platform.io/track"
STABLE_TRACK, CANARY_TRACK = "stable", "canary"
# TorchServe's own default `responseTimeout`, for a model whose model-config.yaml leaves it out.
DEFAULT_RESPONSE_TIMEOUT_S = 120
# A GPU pool's `provisioner` in the platform's pool contract (gpu_node_pool.pool_contract) when Karpenter runs it.
KARPENTER_PROVISIONER = "karpenter"
# KServe creates no HPA for this autoscaler class and leaves the Deployment's replicas to KEDA.
# https://github.com/kserve/kserve/blob/v0.20.0/pkg/constants/constants.go
AUTOSCALER_CLASS = {True: "external", False: "hpa"}


def artifact_prefix(team_prefix: str, model: str, version: str) -> str:
    """Key prefix of one version of a model; versions never overwrite each other."""
    return f"{team_prefix}models/{model}/{version}/"


def served_version(model: ModelDeployment, package: PackagedModel | None) -> str | None:
    """The version a torchserve model's main predictor serves (its canary's, when it has one): the `version` pin
    `aip promote` and `aip rollback` write, else what `aip package` built. None for the kserve runtime.

    A pin makes the deploy reproducible: re-packaging (a new commit, another machine) does not move a model that
    a canary analysis promoted or rolled back. Pin and canary exclude each other (ModelDeployment).
    """
    if model.version is not None:
        return model.version
    return package.version if package is not None else None


def _resources(model: ModelDeployment) -> dict[str, Any]:
    amounts: dict[str, Any] = {"cpu": model.resources.cpu, "memory": model.resources.memory}
    if model.resources.gpu:
        amounts["nvidia.com/gpu"] = str(model.resources.gpu)
    return {"requests": amounts, "limits": dict(amounts)}


def predictor_pod_labels(model: ModelDeployment) -> dict[str, str]:
    """The label KServe puts on every predictor pod of an InferenceService (canary pods included)."""
    return {ISVC_POD_LABEL: model.name}


def version_pod_labels(track: str, version: str | None) -> dict[str, str]:
    """The labels a predictor puts on its pods: its track and, for packaged models, the version it serves.

    KServe copies a component's `labels` onto its pods; a canary predictor's own labels win over the stable
    one's, so each Deployment's pods say which version they run. A kserve-runtime model has no packaged
    version (its image is the version), so it gets the track only.
    https://github.com/kserve/kserve/blob/v0.20.0/pkg/apis/serving/v1beta1/component.go
    """
    labels = {TRACK_POD_LABEL: track}
    if version is not None:
        labels[MODEL_VERSION_POD_LABEL] = version
    return labels


def disruption_budget(model: ModelDeployment, pool: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The spec of the model's PodDisruptionBudget: when it never runs fewer than two replicas, or on a GPU pool
    Karpenter provisions (`provisioner: karpenter` in the pool's contract), whatever its replicas.

    On nodes of a managed node group, a model at one replica (or at zero, idle) gets none: a budget would make
    its single replica unevictable and stall every drain. Karpenter instead skips nodes whose last replica a
    budget protects when it consolidates, and bounds the wait on expiry by its NodePool's `terminationGracePeriod`
    (failover.py): there the budget keeps a model's last ready replica from being consolidated away.
    """
    keep_last = pool is not None and pool.get("provisioner") == KARPENTER_PROVISIONER
    return disruption_budget_spec(predictor_pod_labels(model), max(model.scaling.min, 1), keep_last=keep_last)


def _model_block(model: ModelDeployment, storage_uri: str | None, drain: DrainTiming) -> dict[str, Any]:
    return {
        "modelFormat": {"name": "pytorch"},
        "runtime": TORCHSERVE_RUNTIME.name,
        "runtimeVersion": TORCHSERVE_RUNTIME.gpu_tag if model.resources.gpu else TORCHSERVE_RUNTIME.tag,
        "protocolVersion": model.protocol,
        "storageUri": storage_uri,
        "resources": _resources(model),
        # Merged over the runtime's container: keeps serving until its endpoint is gone and its requests done.
        "lifecycle": drain.pre_stop(),
    }


def scrape_annotations(model: ModelDeployment) -> dict[str, str]:
    """Pod annotations that point Prometheus at the runtime's own metrics port.

    KServe's `enable-prometheus-scraping` would point at a queue-proxy port that Standard mode does not run.
    """
    return {"prometheus.io/scrape": "true", "prometheus.io/port": str(METRICS_PORT[model.runtime]),
            "prometheus.io/path": "/metrics"}


def kserve_predictor_listeners(model: ModelDeployment) -> tuple[list[str], list[dict[str, Any]]]:
    """The port arguments and container ports of a kserve-runtime predictor.

    REST stays the first port, named `http`: in Standard mode KServe 0.20 points the predictor Service's
    port 80 and the default TCP readiness probe at the first container port, and the team's PodMonitor
    scrapes `/metrics` on the port named `http`. With `protocol: grpc-v2` gRPC v2 follows as a second port
    named `h2c`, which KServe exposes on the Service as port 8081 with `appProtocol: kubernetes.io/h2c`
    (a port whose name holds `h2c` or `grpc`). Listed first, it would take over port 80 and the probe, and
    REST clients would reach gRPC. Without grpc-v2 the predictor serves no gRPC at all (`--grpc-port 0`).
    https://github.com/kserve/kserve/blob/v0.20.0/pkg/controller/v1beta1/inferenceservice/reconcilers/service/service_reconciler.go
    """
    args = ["--http-port", str(INFERENCE_PORT)]
    ports = [{"name": "http", "containerPort": INFERENCE_PORT, "protocol": "TCP"}]
    if model.protocol == GRPC_PROTOCOL:
        args += ["--grpc-port", str(GRPC_INFERENCE_PORT)]
        ports.append({"name": "h2c", "containerPort": GRPC_INFERENCE_PORT, "protocol": "TCP"})
    else:
        args += ["--grpc-port", "0"]
    return args, ports


def predictor_spec(model: ModelDeployment, storage_uri: str | None, pool: dict[str, Any] | None,
                   response_timeout_s: int = DEFAULT_RESPONSE_TIMEOUT_S) -> dict[str, Any]:
    """The predictor of an InferenceService: runtime, resources, scaling, identity, GPU placement, and
    failover (zone spread once it may scale past one replica, draining sized to the response timeout)."""
    drain = drain_timing(model.runtime, response_timeout_s)
    scaling = model.scaling
    spec: dict[str, Any] = {
        "serviceAccountName": SERVING_SERVICE_ACCOUNT,
        "minReplicas": scaling.min,
        "maxReplicas": scaling.max,
        "annotations": scrape_annotations(model),
        "securityContext": restricted_pod_security_context(),
        "terminationGracePeriodSeconds": drain.termination_grace_s,
    }
    if not scaling.uses_keda:
        # KServe's HPA scales on these; with KEDA (model_autoscaling.py) the ScaledObject holds the metric.
        spec.update({"scaleMetric": scaling.metric, "scaleTarget": scaling.target})
    spread = zone_spread(predictor_pod_labels(model), scaling.max)
    if spread:
        spec["topologySpreadConstraints"] = spread
    if model.runtime == "torchserve":
        spec["model"] = _model_block(model, storage_uri, drain)
    else:
        # A team's own predictor image carries its weights; KServe only runs it.
        args, ports = kserve_predictor_listeners(model)
        spec["containers"] = [{
            "name": "kserve-container",
            "image": model.image,
            # `args` replaces the image's CMD: repeat where model-handlers/<model>/Dockerfile puts the weights.
            "args": ["--model-name", model.name, "--model-dir", f"/models/{model.name}", *args],
            "ports": ports,
            "resources": _resources(model),
            "securityContext": restricted_security_context(),
            "lifecycle": drain.pre_stop(),
        }]
    if pool is not None:
        spec["nodeSelector"] = dict(pool["nodeSelector"])
        spec["tolerations"] = [dict(t) for t in pool["tolerations"]]
    return spec


def inference_service_manifest(team: str, model: ModelDeployment, storage_uri: str | None,
                               stable_storage_uri: str | None, pool: dict[str, Any] | None,
                               response_timeout_s: int = DEFAULT_RESPONSE_TIMEOUT_S,
                               version: str | None = None) -> dict[str, Any]:
    """The InferenceService of one model.

    With a canary, the stable version stays the main predictor and the new version runs as a canary
    predictor that KServe's Standard mode gives its share of replicas (`spec.canary`, KServe 0.20).
    `version` is the packaged version `storage_uri` holds; each predictor labels its pods with the version it
    serves and its track (`version_pod_labels`).
    """
    annotations = {"serving.kserve.io/deploymentMode": "Standard",
                   "serving.kserve.io/autoscalerClass": AUTOSCALER_CLASS[model.scaling.uses_keda]}
    if model.canary is not None and stable_storage_uri is not None:
        drain = drain_timing(model.runtime, response_timeout_s)
        spec = {"predictor": {**predictor_spec(model, stable_storage_uri, pool, response_timeout_s),
                              "labels": version_pod_labels(STABLE_TRACK, model.canary.stable_version)},
                # KServe's canary schema wants the container's name, which it merges over the stable one.
                "canary": [{"trafficPercent": model.canary.traffic_percent,
                            "predictor": {"name": CANARY_PREDICTOR,
                                          "labels": version_pod_labels(CANARY_TRACK, version),
                                          "terminationGracePeriodSeconds": drain.termination_grace_s,
                                          "model": {"name": "kserve-container",
                                                    **_model_block(model, storage_uri, drain)}}}]}
    else:
        spec = {"predictor": {**predictor_spec(model, storage_uri, pool, response_timeout_s),
                              "labels": version_pod_labels(STABLE_TRACK, version)}}
    return {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
            "metadata": {"name": model.name, "namespace": team, "annotations": annotations}, "spec": spec}


@dataclass(frozen=True)
class ModelServiceArgs:
    """Args of :class:`ModelService`.

    Attributes:
        team: Team (and namespace) the model belongs to.
        model: The model's entry in the team config.
        package: The packaged artifacts (only for the torchserve runtime; may be None for a model pinned to a
            stored `version`).
        bucket: Model store bucket name.
        kms_key_arn: The model store's customer key.
        team_prefix: The team's prefix in the model store.
        pool: The platform's contract for the GPU pool (None for CPU models).
        provider: Kubernetes provider of the team stack.
        response_timeout_s: The model's `responseTimeout` (model-config.yaml), which sizes its draining.
        prometheus_url: The platform's in-cluster Prometheus (platform output `prometheusUrl`), which the model's
            ScaledObjects query; needed when KEDA scales the model.
        scale_to_zero_allowed: The platform's `autoscaling.scaleToZero` (platform output `scaleToZero`).
    """

    team: str
    model: ModelDeployment
    package: PackagedModel | None
    bucket: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    team_prefix: str
    pool: pulumi.Input[dict[str, Any]] | None
    provider: k8s.Provider
    response_timeout_s: int = DEFAULT_RESPONSE_TIMEOUT_S
    prometheus_url: pulumi.Input[str] | None = None
    scale_to_zero_allowed: pulumi.Input[bool] = False


class ModelService(pulumi.ComponentResource):
    """Uploads a model's archives (content-addressed, kept when replaced) and serves them, with the KEDA
    ScaledObjects that scale its predictors (when a serving metric drives it) and its disruption budget."""

    storage_uri: pulumi.Output[str] | None

    def __init__(self, name: str, args: ModelServiceArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-platform:serving:ModelService", name, None, opts)
        model, uploads = args.model, []
        self.storage_uri = None
        stable_uri = None
        version = served_version(model, args.package)
        if version is not None:
            prefix = artifact_prefix(args.team_prefix, model.name, version)
            # A pinned version other than the packaged one is in the store already (a deploy uploaded it, and the
            # uploads are retained): nothing to upload, the storageUri points at its prefix.
            files = args.package.files if args.package is not None and args.package.version == version else {}
            for relative, path in sorted(files.items()):
                uploads.append(aws.s3.BucketObjectv2(
                    f"{name}-{re.sub(r'[^a-z0-9]+', '-', relative.lower()).strip('-')}",
                    bucket=args.bucket,
                    key=prefix + relative,
                    source=pulumi.FileAsset(str(path)),
                    source_hash=args.package.sha256.get(relative),
                    # The platform's key, as the bucket default; without a key id S3 would use aws/s3.
                    server_side_encryption="aws:kms",
                    kms_key_id=args.kms_key_arn,
                    bucket_key_enabled=True,
                    # Older versions stay in the store: rollbacks and canaries point at them.
                    opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True),
                ))
            self.storage_uri = pulumi.Output.concat("s3://", args.bucket, "/", prefix)
            if model.canary is not None:
                stable = artifact_prefix(args.team_prefix, model.name, model.canary.stable_version)
                stable_uri = pulumi.Output.concat("s3://", args.bucket, "/", stable)
        manifest = pulumi.Output.all(self.storage_uri, stable_uri, args.pool).apply(
            lambda v: inference_service_manifest(args.team, model, v[0], v[1], v[2], args.response_timeout_s,
                                                 version=version))
        isvc = k8s.apiextensions.CustomResource(
            f"{name}-isvc",
            api_version="serving.kserve.io/v1beta1",
            kind="InferenceService",
            metadata={"name": model.name, "namespace": args.team,
                      "annotations": manifest.apply(lambda m: m["metadata"]["annotations"])},
            spec=manifest.apply(lambda m: m["spec"]),
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=uploads),
        )
        self._scaled_objects(name, args, isvc)
        if args.pool is None:
            self._disruption_budget(name, args, None)
        else:
            # Whether Karpenter runs the pool is in the platform's contract, read through the stack reference,
            # whose outputs a preview knows as well: the budget shows in previews too.
            pulumi.Output.from_input(args.pool).apply(lambda pool: self._disruption_budget(name, args, pool))
        self.register_outputs({"storage_uri": self.storage_uri})

    def _scaled_objects(self, name: str, args: ModelServiceArgs, isvc: pulumi.Resource) -> None:
        """One ScaledObject per predictor Deployment, after the InferenceService whose Deployments they scale."""
        model = args.model
        if not model.scaling.uses_keda:
            return
        if args.prometheus_url is None:
            raise ValueError(f"model {model.name} is scaled by KEDA, which needs the platform's Prometheus URL")
        settings = pulumi.Output.all(args.prometheus_url, args.scale_to_zero_allowed)
        for deployment in predictor_deployments(model):
            manifest = settings.apply(lambda v, d=deployment: scaled_object_manifest(
                args.team, model, v[0], deployment=d, scale_to_zero_allowed=bool(v[1])))
            k8s.apiextensions.CustomResource(
                f"{name}-{deployment.removeprefix(model.name + '-')}-scaler",
                api_version=SCALED_OBJECT_API_VERSION, kind=SCALED_OBJECT_KIND,
                metadata={"name": deployment, "namespace": args.team},
                spec=manifest.apply(lambda m: m["spec"] if m else None),
                opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=[isvc]))

    def _disruption_budget(self, name: str, args: ModelServiceArgs, pool: dict[str, Any] | None) -> None:
        budget = disruption_budget(args.model, pool)
        if budget is not None:
            # Node drains (autoscaler scale-in, Karpenter's consolidation, node upgrades) evict one predictor at a
            # time, never the last ready one.
            k8s.policy.v1.PodDisruptionBudget(
                f"{name}-pdb", metadata={"name": args.model.name, "namespace": args.team}, spec=budget,
                opts=pulumi.ResourceOptions(parent=self, provider=args.provider))
