"""The shape of a stack's configuration, with its defaults and constraints.

Field names are snake_case in Python and camelCase in the stack files. Each field's description is
what README's configuration reference shows (`aip docs`). Defaults of the scalar keys declared in
Pulumi.yaml live there (the engine applies them); defaults of structured keys live here.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from infra import gpu_catalog
from infra.config.base import FrozenModel
from infra.config.errors import SUBKEY_MARK
from infra.config.fields import (
    Cidr,
    EksVersion,
    GpuInstanceType,
    InstanceType,
    NodeCount,
    PoolName,
    Region,
    StackReferenceName,
    StrictBool,
    StrictInt,
    StrictStr,
    SubnetId,
    TagValue,
    TeamName,
    VpcId,
)
from infra.config.observability import ObservabilityConfig, with_environment_defaults
from infra.config.serving import ModelDeployment, QuotaConfig, unique_names
from infra.versions import DEFAULT_EKS_VERSION

Environment = Literal["dev", "staging", "prod"]
DataClassification = Literal["public", "internal", "confidential", "restricted"]

# CloudWatch Logs accepts only these retention periods.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192,
                      2557, 2922, 3288, 3653)


class _Scaling(FrozenModel):
    """Sizes shared by every node group; desiredSize defaults to minSize."""

    min_size: NodeCount
    max_size: NodeCount
    desired_size: NodeCount | None = Field(default=None, validate_default=True)

    @field_validator("max_size")
    @classmethod
    def _max_not_below_min(cls, value: int, info: ValidationInfo) -> int:
        minimum = info.data.get("min_size")
        if minimum is not None and value < minimum:
            raise ValueError(f"must be at least minSize ({minimum})")
        if value < 1:
            raise ValueError("must be at least 1")
        return value

    @field_validator("desired_size")
    @classmethod
    def _desired_within_bounds(cls, value: int | None, info: ValidationInfo) -> int | None:
        low, high = info.data.get("min_size"), info.data.get("max_size")
        if value is not None and low is not None and high is not None and not low <= value <= high:
            raise ValueError(f"must lie between minSize ({low}) and maxSize ({high})")
        return value

    @property
    def desired(self) -> int:
        return self.min_size if self.desired_size is None else self.desired_size


class NetworkConfig(FrozenModel):
    """Where the cluster lives: a new VPC, or subnets you already have."""

    vpc_cidr: Cidr = Field(default="10.64.0.0/16", description="CIDR of the new VPC, /16 to /20.")
    availability_zones: StrictInt = Field(default=3, ge=2, le=6, description="AZs to spread subnets across.")
    nat_gateways: Literal["single", "perAz"] = Field(
        default="perAz", description="`perAz` (highly available, required in prod) or `single` (cheaper)."
    )
    existing_vpc_id: VpcId | None = Field(default=None, description="Bring your own VPC instead of creating one.")
    existing_private_subnet_ids: tuple[SubnetId, ...] = Field(
        default=(), validate_default=True, description="Private subnets of `existingVpcId` (at least 2 AZs)."
    )

    @field_validator("vpc_cidr")
    @classmethod
    def _room_for_subnets(cls, value: str) -> str:
        prefix = int(value.split("/")[1])
        if not 16 <= prefix <= 20:
            raise ValueError("must be between /16 and /20 so every AZ gets a public and a private subnet")
        return value

    @field_validator("existing_private_subnet_ids")
    @classmethod
    def _subnets_with_vpc(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        vpc = info.data.get("existing_vpc_id")
        if vpc and len(value) < 2:
            raise ValueError("needs at least 2 private subnets (in different AZs) when existingVpcId is set")
        if value and not vpc and "existing_vpc_id" in info.data:
            raise ValueError("is only used together with existingVpcId")
        if len(set(value)) != len(value):
            raise ValueError("lists a subnet twice")
        return value


class SystemNodesConfig(_Scaling):
    """The on-demand node group that runs platform add-ons (CoreDNS, device plugin, monitoring)."""

    instance_types: tuple[InstanceType, ...] = Field(
        default=("m7i.large",), min_length=1, description="Instance types of the system node group."
    )
    min_size: NodeCount = Field(default=2, description="Smallest size of the system node group.")
    max_size: NodeCount = Field(default=4, description="Largest size of the system node group.")
    desired_size: NodeCount | None = Field(default=None, validate_default=True, description="Initial size.")


class ClusterConfig(FrozenModel):
    """The EKS control plane."""

    version: EksVersion = Field(default=DEFAULT_EKS_VERSION, description="Kubernetes version of the cluster.")
    endpoint_public_access: StrictBool = Field(
        default=False, description="Expose the API endpoint publicly (only to `publicAccessCidrs`)."
    )
    public_access_cidrs: tuple[Cidr, ...] = Field(
        default=(), validate_default=True,
        description="CIDRs allowed to reach a public endpoint; required when it is public, none broader than /8.",
    )
    private_access_cidrs: tuple[Cidr, ...] = Field(
        default=(), description="Private networks (VPN, CI runners' VPC) that may reach the private endpoint (443).")
    log_retention_days: StrictInt = Field(default=90, description="Retention of control-plane logs (days).")
    approved_registries: tuple[StrictStr, ...] = Field(
        default=("docker.io/pytorch/", "pytorch/", "docker.io/kserve/", "kserve/", "ghcr.io/kserve/",
                 "public.ecr.aws/", "nvcr.io/nvidia/", "registry.k8s.io/"), min_length=1,
        description="Image prefixes pods in team namespaces may use (the account's ECR is always allowed).")
    system_nodes: SystemNodesConfig = Field(default_factory=SystemNodesConfig, description="System node group.")

    @field_validator("public_access_cidrs")
    @classmethod
    def _allowlist(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        public = info.data.get("endpoint_public_access")
        if public and not value:
            raise ValueError("must list at least one CIDR when endpointPublicAccess is true")
        if value and public is False:
            raise ValueError("is only used when endpointPublicAccess is true")
        return value

    @field_validator("log_retention_days")
    @classmethod
    def _cloudwatch_retention(cls, value: int) -> int:
        if value not in LOG_RETENTION_DAYS:
            allowed = ", ".join(map(str, LOG_RETENTION_DAYS))
            raise ValueError(f"must be one of CloudWatch's retention periods: {allowed}")
        return value


class GpuPoolConfig(_Scaling):
    """One GPU node pool: an EKS managed node group on the NVIDIA AL2023 AMI."""

    name: PoolName = Field(description="Pool name, used in node labels and resource names.")
    instance_types: tuple[GpuInstanceType, ...] = Field(
        min_length=1, description="GPU instance types, all of one GPU model (e.g. g6.xlarge, g6.2xlarge)."
    )
    capacity_type: Literal["ON_DEMAND", "SPOT"] = Field(default="ON_DEMAND", description="On-demand or spot.")
    min_size: NodeCount = Field(default=0, description="Smallest pool size; 0 lets the pool scale to zero.")
    max_size: NodeCount = Field(description="Largest pool size (your GPU budget).")
    desired_size: NodeCount | None = Field(default=None, validate_default=True, description="Initial size.")
    root_volume_gib: StrictInt = Field(default=200, ge=50, le=4096, description="Encrypted gp3 root volume size.")
    dedicated_team: TeamName | None = Field(
        default=None, description="Reserve the pool for one team (extra taint and label)."
    )

    @field_validator("instance_types")
    @classmethod
    def _one_gpu_model(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        models = {gpu_catalog.GPU_FAMILIES[gpu_catalog.family_of(t)].gpu for t in value}
        if len(models) > 1:
            raise ValueError(f"mixes GPU models ({', '.join(sorted(models))}); use one pool per GPU model")
        if len(set(value)) != len(value):
            raise ValueError("lists an instance type twice")
        return value

    @property
    def gpu(self) -> gpu_catalog.GpuFamily:
        return gpu_catalog.GPU_FAMILIES[gpu_catalog.family_of(self.instance_types[0])]


class ModelStoreConfig(FrozenModel):
    """The S3 bucket that holds model artifacts."""

    deletion_protection: Literal["protect", "retain", "none"] = Field(
        default="protect",
        description="`protect` blocks deletes, `retain` keeps buckets when the stack is destroyed, `none` is unsafe.",
    )
    noncurrent_version_expiration_days: StrictInt = Field(
        default=90, ge=1, le=3650, description="Days before replaced model versions are deleted."
    )
    access_log_expiration_days: StrictInt = Field(
        default=365, ge=1, le=3650, description="Days the bucket's access logs are kept."
    )


class _Common(FrozenModel):
    project: StrictStr
    stack: StrictStr
    region: Region
    environment: Environment
    cost_center: TagValue = Field(min_length=1, max_length=64)
    data_classification: DataClassification

    @property
    def tags(self) -> dict[str, str]:
        """The tags every taggable resource of the stack carries."""
        return {
            "team": getattr(self, "team", "platform"),
            "environment": self.environment,
            "cost-center": self.cost_center,
            "data-classification": self.data_classification,
            "managed-by": "pulumi",
        }


class PlatformConfig(_Common):
    """A platform stack: one per environment, owns the cluster and shared services."""

    kind: Literal["platform"] = "platform"
    network: NetworkConfig = Field(default_factory=NetworkConfig)
    cluster: ClusterConfig = Field(default_factory=ClusterConfig)
    gpu_pools: tuple[GpuPoolConfig, ...] = Field(min_length=1)
    model_store: ModelStoreConfig = Field(default_factory=ModelStoreConfig)
    observability: ObservabilityConfig = Field(
        description="Metrics and logs; every key defaults per environment (see ENVIRONMENT_DEFAULTS).")

    @model_validator(mode="before")
    @classmethod
    def _observability_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = {**data, "observability": with_environment_defaults(data.get("observability"),
                                                                          data.get("environment"))}
        return data

    @field_validator("gpu_pools")
    @classmethod
    def _unique_pool_names(cls, value: tuple[GpuPoolConfig, ...]) -> tuple[GpuPoolConfig, ...]:
        names = [pool.name for pool in value]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"pool names must be unique; repeated: {', '.join(duplicates)}")
        return value

    @field_validator("network")
    @classmethod
    def _prod_is_highly_available(cls, value: NetworkConfig, info: ValidationInfo) -> NetworkConfig:
        if info.data.get("environment") == "prod" and value.existing_vpc_id is None and value.nat_gateways != "perAz":
            raise ValueError(f"{SUBKEY_MARK}natGateways: must be perAz in prod (one NAT gateway per AZ)")
        return value


class TeamConfig(_Common):
    """A team stack: one per team and environment, owns only team-scoped resources."""

    kind: Literal["team"] = "team"
    team: TeamName
    platform_stack: StackReferenceName
    quota: QuotaConfig = Field(default_factory=QuotaConfig, description="The namespace's resource quota.")
    models: tuple[ModelDeployment, ...] = Field(default=(), description="Models the team serves.")

    @field_validator("models")
    @classmethod
    def _models_fit_the_quota(cls, value: tuple[ModelDeployment, ...],
                              info: ValidationInfo) -> tuple[ModelDeployment, ...]:
        quota = info.data.get("quota")
        gpus = sum(m.resources.gpu * m.max_replicas for m in value)
        if quota is not None and gpus > quota.gpu:
            raise ValueError(f"need up to {gpus} GPUs at maxReplicas, more than quota.gpu ({quota.gpu})")
        return unique_names(value)

    @field_validator("platform_stack")
    @classmethod
    def _same_environment(cls, value: str, info: ValidationInfo) -> str:
        environment, project = info.data.get("environment"), info.data.get("project")
        if project and value.split("/")[1] != project:
            raise ValueError(f"must name a stack of this project (<org>/{project}/<environment>)")
        if environment and value.rsplit("/", 1)[-1] != environment:
            raise ValueError(f"must name the platform stack of the team's environment (.../{environment})")
        return value


StackConfig = PlatformConfig | TeamConfig
