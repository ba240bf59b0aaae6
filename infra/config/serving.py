"""How a team stack deploys its models: one InferenceService per entry of `ai-platform:models`."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, StrictInt, StrictStr, ValidationInfo, field_validator, model_validator

from infra.config.base import FrozenModel
from infra.config.canary import CanaryAnalysisConfig
from infra.config.capacity import RUNTIME_METRICS, ModelAutoscalingConfig
from infra.config.errors import SUBKEY_MARK
from infra.serving.catalog import MODEL_HANDLERS, Catalog
from infra.serving.config_properties import TORCHSERVE_PROTOCOLS
from policies.images import pin_problem

_CPU = re.compile(r"^([1-9]\d*m|\d+(\.\d+)?)$")
_MEMORY = re.compile(r"^[1-9]\d*(Ki|Mi|Gi|Ti)$")
_VERSION = re.compile(r"^[0-9a-f]{12,64}$")
# The keys `autoscaling` replaces: a model gives one or the other.
LEGACY_SCALING_KEYS = ("minReplicas", "maxReplicas", "scaleMetric", "scaleTarget")
# The protocol that adds gRPC v2 to a kserve predictor (infra.components.inference_service.predictor_spec).
GRPC_PROTOCOL = "grpc-v2"


def _cpu(value: str) -> str:
    if not _CPU.fullmatch(value) or value in {"0", "0.0"}:
        raise ValueError("must be a Kubernetes CPU quantity such as 500m or 2")
    return value


def _memory(value: str) -> str:
    if not _MEMORY.fullmatch(value):
        raise ValueError("must be a Kubernetes memory quantity such as 512Mi or 4Gi")
    return value


def model_names() -> tuple[str, ...]:
    return Catalog(MODEL_HANDLERS).names()


def _model_folder(value: str) -> str:
    available = model_names()
    if value not in available:
        raise ValueError(f"is not a model folder under model-handlers/; available: {', '.join(available) or 'none'}")
    return value


def _pinned_image(value: str) -> str:
    # The pack's own rule (version tag or digest); prod's digest requirement is the pack's requireDigest.
    problem = pin_problem(value)
    if problem:
        raise ValueError(problem)
    return value


class ModelResources(FrozenModel):
    """Requests of one replica; limits equal requests, so replicas get the Guaranteed QoS class."""

    cpu: Annotated[StrictStr, AfterValidator(_cpu)] = Field(default="1", description="CPU per replica.")
    memory: Annotated[StrictStr, AfterValidator(_memory)] = Field(default="2Gi", description="Memory per replica.")
    gpu: StrictInt = Field(default=0, ge=0, le=8, description="NVIDIA GPUs per replica (needs `gpuPool`).")


class QuotaConfig(FrozenModel):
    """What all of a team's pods together may request in its namespace (a ResourceQuota)."""

    cpu: Annotated[StrictStr, AfterValidator(_cpu)] = Field(default="32", description="CPU requests and limits.")
    memory: Annotated[StrictStr, AfterValidator(_memory)] = Field(default="128Gi", description="Memory.")
    gpu: StrictInt = Field(default=4, ge=0, le=512, description="NVIDIA GPUs (requests.nvidia.com/gpu).")
    pods: StrictInt = Field(default=50, ge=1, le=5000, description="Pods.")


class CanaryConfig(FrozenModel):
    """Roll the newly packaged version out to part of the traffic; the rest stays on `stableVersion`."""

    traffic_percent: StrictInt = Field(ge=1, le=99, description="Share of requests the new version gets.")
    stable_version: Annotated[StrictStr, Field(pattern=_VERSION.pattern)] = Field(
        description="Packaged version (from `aip package`) that keeps the rest of the traffic.")
    analysis: CanaryAnalysisConfig = Field(
        default_factory=CanaryAnalysisConfig,
        description="Thresholds `aip canary analyze` promotes or rolls back the canary by (docs/delivery.md).")


class ModelDeployment(FrozenModel):
    """One model of the team, served by one InferenceService."""

    name: Annotated[StrictStr, AfterValidator(_model_folder)] = Field(
        description="Model folder under model-handlers/; also the InferenceService name.")
    runtime: Literal["torchserve", "kserve"] = Field(
        default="torchserve", description="`torchserve` (the platform's runtime) or `kserve` (your predictor image).")
    protocol: Literal["v1", "v2", "grpc-v2"] = Field(
        default="v1", description="KServe inference protocol. `grpc-v2` (kserve runtime only) also serves gRPC v2 "
                                  "(`inference.GRPCInferenceService`) on the predictor Service's port 8081; REST v1/v2 "
                                  "and `/metrics` stay on its port 80 (container port 8080).")
    image: Annotated[StrictStr, AfterValidator(_pinned_image)] | None = Field(
        default=None, validate_default=True,
        description="Predictor image for the `kserve` runtime, pinned by digest (`@sha256:`) or a version tag of at "
                    "least major.minor (`1.2.3`, `v2.1`, no `latest`/`main`/`SNAPSHOT`); prod requires the digest.")
    resources: ModelResources = Field(default_factory=ModelResources, description="Per-replica resources.")
    gpu_pool: StrictStr | None = Field(default=None, validate_default=True,
                                       description="GPU pool of the platform to run on.")
    min_replicas: StrictInt = Field(default=1, ge=1, le=100, description="Fewest replicas.")
    max_replicas: StrictInt = Field(default=3, ge=1, le=100, description="Most replicas.")
    scale_metric: Literal["cpu", "memory"] = Field(default="cpu", description="What the autoscaler (HPA) watches.")
    scale_target: StrictInt = Field(default=70, ge=1, le=100, description="Target utilization (%) of the metric.")
    canary: CanaryConfig | None = Field(default=None, description="Canary rollout of the new version.")
    version: Annotated[StrictStr, Field(pattern=_VERSION.pattern)] | None = Field(
        default=None, description="Packaged version to serve instead of the one `aip package` built now: one an "
                                  "earlier deploy uploaded (the model store keeps every version). Set by `aip "
                                  "promote` and `aip rollback`; not beside `canary` (docs/delivery.md).")
    autoscaling: ModelAutoscalingConfig | None = Field(
        default=None, description="Replicas driven by a serving metric (KEDA) or CPU/memory (HPA); replaces "
                                  "minReplicas, maxReplicas, scaleMetric and scaleTarget.")

    @model_validator(mode="before")
    @classmethod
    def _one_way_to_scale(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("autoscaling") is not None:
            legacy = [key for key in LEGACY_SCALING_KEYS if key in data]
            if legacy:
                raise ValueError(f"{SUBKEY_MARK}autoscaling: replaces {', '.join(legacy)}; give autoscaling.min, "
                                 "max, metric and target instead")
        return data

    @field_validator("image")
    @classmethod
    def _image_only_for_kserve(cls, value: str | None, info: ValidationInfo) -> str | None:
        runtime = info.data.get("runtime")
        if runtime == "kserve" and value is None:
            raise ValueError("is required for the kserve runtime (the predictor image your CI builds)")
        if runtime == "torchserve" and value is not None:
            raise ValueError("is only used by the kserve runtime (torchserve uses the platform's image)")
        return value

    @field_validator("gpu_pool")
    @classmethod
    def _pool_with_gpus(cls, value: str | None, info: ValidationInfo) -> str | None:
        resources = info.data.get("resources")
        gpus = resources.gpu if resources else 0
        if gpus and not value:
            raise ValueError("is required when resources.gpu is set (the pool whose nodes have the GPUs)")
        if value and resources and not gpus:
            raise ValueError("is only used when resources.gpu is at least 1")
        return value

    @field_validator("protocol")
    @classmethod
    def _protocol_of_runtime(cls, value: str, info: ValidationInfo) -> str:
        if value == GRPC_PROTOCOL and info.data.get("runtime") != "kserve":
            raise ValueError("grpc-v2 is only for the kserve runtime (your predictor serves gRPC v2 beside REST); "
                             "the torchserve runtime serves v1 over REST")
        if info.data.get("runtime") == "torchserve" and value not in TORCHSERVE_PROTOCOLS:
            raise ValueError(f"must be one of: {', '.join(TORCHSERVE_PROTOCOLS)} for the torchserve runtime "
                             "(v2 is served by the kserve runtime)")
        return value

    @field_validator("canary")
    @classmethod
    def _canary_of_packaged_versions(cls, value: CanaryConfig | None, info: ValidationInfo) -> CanaryConfig | None:
        if value is not None and info.data.get("runtime") == "kserve":
            raise ValueError("is only for the torchserve runtime (a kserve predictor rolls out with a new image tag)")
        return value

    @field_validator("version")
    @classmethod
    def _version_of_packaged_models(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.data.get("runtime") == "kserve":
            raise ValueError("is only for the torchserve runtime (a kserve predictor's version is its image)")
        if value is not None and info.data.get("canary") is not None:
            raise ValueError("is not used beside canary: with a canary, canary.stableVersion serves the stable "
                             "share and the packaged version the canary; `aip promote` or `aip rollback` ends the "
                             "canary and pins one of them")
        return value

    @field_validator("autoscaling")
    @classmethod
    def _metric_of_runtime(cls, value: ModelAutoscalingConfig | None,
                           info: ValidationInfo) -> ModelAutoscalingConfig | None:
        runtime = info.data.get("runtime")
        wanted = RUNTIME_METRICS.get(value.metric) if value is not None else None
        if wanted and runtime and runtime != wanted:
            raise ValueError(f"{SUBKEY_MARK}metric: {value.metric} is exported by the {wanted} runtime only; this "
                             f"model runs on {runtime} (concurrency and requests-per-second work on both)")
        return value

    @model_validator(mode="after")
    def _room_for_both_versions(self) -> ModelDeployment:
        # The stable and the canary version each run in a Deployment of their own, with a replica each; at a max of
        # one replica the two would need more GPUs than the team's quota was checked for.
        if self.canary is not None and self.scaling.max < 2:
            key = "autoscaling.max" if self.autoscaling is not None else "maxReplicas"
            raise ValueError(f"{SUBKEY_MARK}{key}: must be at least 2 with a canary (the stable and the canary "
                             "version run a replica each)")
        return self

    @property
    def scaling(self) -> ModelAutoscalingConfig:
        """The model's autoscaling: `autoscaling` when given, else the legacy keys (KServe's HPA)."""
        if self.autoscaling is not None:
            return self.autoscaling
        return ModelAutoscalingConfig(metric=self.scale_metric, target=self.scale_target, min=self.min_replicas,
                                      max=self.max_replicas)

    @field_validator("max_replicas")
    @classmethod
    def _max_not_below_min(cls, value: int, info: ValidationInfo) -> int:
        minimum = info.data.get("min_replicas")
        if minimum is not None and value < minimum:
            raise ValueError(f"must be at least minReplicas ({minimum})")
        return value


def unique_names(value: tuple[ModelDeployment, ...]) -> tuple[ModelDeployment, ...]:
    names = [m.name for m in value]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"model names must be unique; repeated: {', '.join(repeated)}")
    return value

