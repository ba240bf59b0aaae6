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
from infra.config.capacity import (
    KARPENTER_CAPACITY_TYPES,
    CapacityReservationId,
    CapacityType,
    ConsolidationConfig,
    ExpiryDuration,
    GpuSharingConfig,
    GracePeriod,
    PlatformAutoscalingConfig,
    with_scale_to_zero_default,
)
from infra.config.errors import SUBKEY_MARK, problems_at_subkeys
from infra.config.fields import (
    Cidr,
    EksVersion,
    GpuInstanceType,
    InstanceType,
    NodeCount,
    PoolName,
    Region,
    RegistryPrefix,
    StackReferenceName,
    StrictBool,
    StrictInt,
    StrictStr,
    SubnetId,
    TagValue,
    TeamName,
    TransitGatewayId,
    VpcId,
    VpnGatewayId,
)
from infra.config.observability import ObservabilityConfig, prod_minimum, with_environment_defaults
from infra.config.reachability import covers, unrouted_networks
from infra.config.recovery import RECOVERY_SUFFIX, RecoveryConfig, check_recovery
from infra.config.serving import ModelDeployment, unique_names
from infra.config.teams import AccessEntryConfig, TeamEntry, unique_principals
from infra.versions import DEFAULT_EKS_VERSION
from policies.defaults import DEFAULT_APPROVED_REGISTRIES
from policies.images import duplicate_problem

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


class RouteConfig(FrozenModel):
    """A route from the private subnets to a network beyond the VPC, through exactly one target.

    The stack attaches its VPC to each target (a transit gateway or virtual private gateway), so the route works on
    the first deploy. A VPC peering connection is not offered: it can only be created once this VPC exists.
    https://docs.aws.amazon.com/vpc/latest/userguide/route-table-options.html
    """

    cidr: Cidr = Field(description="Destination network (e.g. the CI runners' VPC or the VPN's client range).")
    transit_gateway_id: TransitGatewayId | None = Field(
        default=None, description="Through this transit gateway; the stack attaches the VPC to it (share it with the "
                                  "account through RAM first).")
    vpn_gateway_id: VpnGatewayId | None = Field(
        default=None, description="Through this virtual private gateway (of this account, attached to no other VPC); "
                                  "the stack attaches the VPC to it.")

    @model_validator(mode="before")
    @classmethod
    def _no_peering(cls, data: Any) -> Any:
        # Named here rather than left to "unknown key": stack files written for earlier releases may use it.
        if isinstance(data, dict) and "vpcPeeringConnectionId" in data:
            raise ValueError(f"{SUBKEY_MARK}vpcPeeringConnectionId: a VPC peering connection needs this stack's VPC "
                             "to exist before it can be created, so a route through one fails on the first deploy; "
                             "route through transitGatewayId or vpnGatewayId instead, or bring your own VPC "
                             "(existingVpcId) and manage its routes there")
        return data

    @model_validator(mode="after")
    def _one_target(self) -> RouteConfig:
        targets = [t for t in (self.transit_gateway_id, self.vpn_gateway_id) if t]
        if len(targets) != 1:
            raise ValueError(f"needs exactly one of transitGatewayId, vpnGatewayId (found {len(targets)})")
        return self

    @property
    def gateway_id(self) -> str:
        """The transit gateway or virtual private gateway the route goes through."""
        return str(self.transit_gateway_id or self.vpn_gateway_id)


class NetworkConfig(FrozenModel):
    """Where the cluster lives: a new VPC, or subnets you already have."""

    vpc_cidr: Cidr = Field(default="10.64.0.0/16", description="CIDR of the new VPC, /16 to /20.")
    availability_zones: StrictInt = Field(default=3, ge=2, le=6, description="AZs to spread subnets across.")
    nat_gateways: Literal["single", "perAz"] = Field(
        default="perAz", description="`perAz` (highly available, required in prod) or `single` (cheaper)."
    )
    existing_vpc_id: VpcId | None = Field(
        default=None, description="Bring your own VPC instead of creating one. Its routes are its owner's: give its "
                                  "private subnets' route tables an S3 gateway endpoint (model pulls and log snapshots "
                                  "then bypass NAT) and routes back to every `cluster.privateAccessCidrs` network.")
    existing_private_subnet_ids: tuple[SubnetId, ...] = Field(
        default=(), validate_default=True, description="Private subnets of `existingVpcId` (at least 2 AZs)."
    )
    routes: tuple[RouteConfig, ...] = Field(
        default=(), description="Routes from the private subnets to other private networks, added to every private "
                                "route table (only with a VPC the stack creates).")

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

    @field_validator("routes")
    @classmethod
    def _routes_of_own_vpc(cls, value: tuple[RouteConfig, ...], info: ValidationInfo) -> tuple[RouteConfig, ...]:
        if value and info.data.get("existing_vpc_id"):
            raise ValueError("only with a VPC the stack creates; the routes of existingVpcId are its owner's")
        cidrs = [route.cidr for route in value]
        repeated = sorted({c for c in cidrs if cidrs.count(c) > 1})
        if repeated:
            raise ValueError(f"each destination may be routed once; repeated: {', '.join(repeated)}")
        # https://docs.aws.amazon.com/vpn/latest/s2svpn/SetUpVPNConnections.html
        vpn_gateways = sorted({route.vpn_gateway_id for route in value if route.vpn_gateway_id})
        if len(vpn_gateways) > 1:
            raise ValueError(f"a VPC attaches to one virtual private gateway at a time; found {len(vpn_gateways)}: "
                             f"{', '.join(vpn_gateways)}")
        vpc = info.data.get("vpc_cidr")
        # A broader destination (10.0.0.0/8 to a transit gateway) is fine: the VPC's local route is more specific.
        inside = [c for c in cidrs if vpc and covers(vpc, c)]
        if inside:
            raise ValueError(f"must route networks beyond the VPC; inside it ({vpc}), which its local route serves: "
                             f"{', '.join(inside)}")
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
        description="CIDRs allowed to reach a public endpoint; required when it is public, none broader than /8 (the "
                    "policy pack narrows this per environment and allows no public endpoint in prod).",
    )
    private_access_cidrs: tuple[Cidr, ...] = Field(
        default=(), description="Private networks (VPN, CI runners' VPC) that may reach the private endpoint (443); "
                                "required while the endpoint is private; those outside the VPC need a `network.routes` "
                                "entry.")
    log_retention_days: StrictInt = Field(
        default=365, description="Days the control-plane (audit) and VPC flow log groups keep events (at least 365 "
                                 "in prod).")
    approved_registries: tuple[RegistryPrefix, ...] = Field(
        default=DEFAULT_APPROVED_REGISTRIES, min_length=1,
        description="Image prefixes pods in team namespaces may use, each a registry host and repository path ending "
                    "in `/` (`pytorch/` reads as `docker.io/pytorch/`); the ECR of the stack's own account is always "
                    "allowed. Keep the pack's `approvedRegistries` in step.")
    system_nodes: SystemNodesConfig = Field(default_factory=SystemNodesConfig, description="System node group.")
    access_entries: tuple[AccessEntryConfig, ...] = Field(
        default=(), description="IAM principals admitted to the cluster besides its creator and the teams' CI "
                                "(a second CI role, operators, auditors), each with an EKS access policy.")

    @field_validator("access_entries")
    @classmethod
    def _one_entry_per_principal(cls, value: tuple[AccessEntryConfig, ...]) -> tuple[AccessEntryConfig, ...]:
        return unique_principals(value)

    @field_validator("approved_registries")
    @classmethod
    def _each_prefix_once(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        problem = duplicate_problem(value)
        if problem:
            raise ValueError(problem)
        return value

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

    _prod = field_validator("log_retention_days")(prod_minimum)


# Pool keys (stack key, field) that only a Karpenter NodePool reads.
KARPENTER_ONLY_KEYS = (("consolidation", "consolidation"), ("expireAfter", "expire_after"),
                       ("terminationGracePeriod", "termination_grace_period"),
                       ("capacityReservationIds", "capacity_reservation_ids"))


class GpuPoolConfig(_Scaling):
    """One GPU node pool on the NVIDIA AL2023 AMI: an EKS managed node group, or Karpenter NodePool."""

    name: PoolName = Field(description="Pool name, used in node labels and resource names.")
    provisioner: Literal["managed", "karpenter"] = Field(
        default="managed", description="`karpenter` (a NodePool: nodes of the right size on demand, spot with "
                                       "interruption handling, consolidation, rotation) or `managed` (an EKS managed "
                                       "node group scaled by the cluster autoscaler).")
    instance_types: tuple[GpuInstanceType, ...] = Field(
        min_length=1, description="GPU instance types, all of one GPU model (e.g. g6.xlarge, g6.2xlarge)."
    )
    capacity_type: CapacityType = Field(
        default="ON_DEMAND", description="On-demand or spot (one capacity type; `capacityTypes` lists several).")
    capacity_types: tuple[CapacityType, ...] = Field(
        default=("ON_DEMAND",), min_length=1,
        description="Karpenter pools: `ON_DEMAND`, `SPOT` and `RESERVED` (capacity reservations) to mix; Karpenter "
                    "prefers reserved, then spot, then on-demand. A managed pool has one (`capacityType`).")
    capacity_reservation_ids: tuple[CapacityReservationId, ...] = Field(
        default=(), validate_default=True,
        description="EC2 capacity reservations (`cr-...`) a karpenter pool with `RESERVED` launches into.")
    min_size: NodeCount = Field(default=0, description="Smallest pool size; 0 lets the pool scale to zero. A karpenter "
                                                       "pool keeps this many nodes warm (its capacity floor).")
    max_size: NodeCount = Field(description="Largest pool size (your GPU budget); a karpenter pool's NodePool limits "
                                            "(nodes, and GPUs of its largest instance type).")
    desired_size: NodeCount | None = Field(default=None, validate_default=True,
                                           description="Initial size (managed pools).")
    root_volume_gib: StrictInt = Field(default=200, ge=50, le=4096, description="Encrypted gp3 root volume size.")
    dedicated_team: TeamName | None = Field(
        default=None, description="Reserve the pool for one team (extra taint and label)."
    )
    consolidation: ConsolidationConfig = Field(
        default_factory=ConsolidationConfig, description="Karpenter pools: when underused nodes are consolidated.")
    expire_after: ExpiryDuration = Field(
        default="720h", description="Karpenter pools: age at which a node is replaced, at least `1h` (rotation is how "
                                    "GPU nodes get a patched AMI; `Never` is flagged by policy).")
    termination_grace_period: GracePeriod = Field(
        default="24h", description="Karpenter pools: how long a draining node waits for pods that a disruption "
                                   "budget protects before they are evicted anyway; at least `1m`, no `Never`.")
    sharing: GpuSharingConfig = Field(default_factory=GpuSharingConfig,
                                      description="How the device plugin shares each GPU between pods.")

    @model_validator(mode="before")
    @classmethod
    def _capacity_type_or_types(cls, data: Any) -> Any:
        """`capacityType: X` means `capacityTypes: [X]`, and the first of `capacityTypes` is the capacityType.

        Only a valid value is copied to the other key, so that a wrong one is reported once, where it was written.
        """
        if not isinstance(data, dict):
            return data
        single, several = data.get("capacityType"), data.get("capacityTypes")
        if single is not None and several is not None:
            raise ValueError(f"{SUBKEY_MARK}capacityTypes: give either capacityType (one) or capacityTypes, not both")
        managed = data.get("provisioner", "managed") == "managed"
        # isinstance first: a list or mapping written here is no key of the mapping of types (and unhashable).
        if isinstance(single, str) and single in KARPENTER_CAPACITY_TYPES and not (managed and single == "RESERVED"):
            data = {**data, "capacityTypes": [single]}
        elif isinstance(several, list) and several and isinstance(several[0], str) \
                and several[0] in KARPENTER_CAPACITY_TYPES:
            data = {**data, "capacityType": several[0]}
        return data

    @field_validator("capacity_type")
    @classmethod
    def _capacity_type_of_provisioner(cls, value: str, info: ValidationInfo) -> str:
        # Left out of capacityTypes by _capacity_type_or_types, so that the problem is reported here, where it was
        # written.
        if info.data.get("provisioner") == "managed" and value == "RESERVED":
            raise ValueError("RESERVED (capacity reservations) needs provisioner: karpenter; a managed pool is "
                             "ON_DEMAND or SPOT")
        return value

    @field_validator("instance_types")
    @classmethod
    def _one_gpu_model(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        models = {gpu_catalog.GPU_FAMILIES[gpu_catalog.family_of(t)].gpu for t in value}
        if len(models) > 1:
            raise ValueError(f"mixes GPU models ({', '.join(sorted(models))}); use one pool per GPU model")
        if len(set(value)) != len(value):
            raise ValueError("lists an instance type twice")
        return value

    @field_validator("capacity_types")
    @classmethod
    def _each_capacity_type_once(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("lists a capacity type twice")
        return value

    # Each check below is a validator of the key it is about, so that every problem is reported at its own key.
    # `provisioner`, `instanceTypes` and `capacityTypes` are declared before the keys whose checks read them.

    @field_validator("capacity_types")
    @classmethod
    def _capacity_types_of_provisioner(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        if info.data.get("provisioner") == "managed" and (len(value) != 1 or value[0] == "RESERVED"):
            raise ValueError("a managed pool has exactly one capacity type, ON_DEMAND or SPOT; mixing them, or "
                             "RESERVED, needs provisioner: karpenter")
        return value

    @field_validator("capacity_reservation_ids")
    @classmethod
    def _reservations_with_reserved(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        types = info.data.get("capacity_types")
        if info.data.get("provisioner") == "karpenter" and types is not None:
            if "RESERVED" in types and not value:
                raise ValueError("must list the capacity reservations (cr-...) that capacity type RESERVED "
                                 "launches into")
            if value and "RESERVED" not in types:
                raise ValueError("is only used when capacityTypes includes RESERVED")
        repeated = sorted({r for r in value if value.count(r) > 1})
        if repeated:
            raise ValueError(f"lists a capacity reservation twice: {', '.join(repeated)}")
        return value

    @field_validator(*(field for _, field in KARPENTER_ONLY_KEYS))
    @classmethod
    def _karpenter_only(cls, value: Any, info: ValidationInfo) -> Any:
        # Runs for keys the stack sets (defaults are not validated): a managed pool may not set them.
        if info.data.get("provisioner") == "managed" and value:
            raise ValueError("is only used by karpenter pools (provisioner: karpenter)")
        return value

    @field_validator("sharing")
    @classmethod
    def _sharing_the_pool_can_do(cls, value: GpuSharingConfig, info: ValidationInfo) -> GpuSharingConfig:
        types, provisioner = info.data.get("instance_types"), info.data.get("provisioner")
        if value.mode != "mig" or not types or provisioner is None:
            return value
        gpu = gpu_catalog.GPU_FAMILIES[gpu_catalog.family_of(types[0])].gpu
        profiles = gpu_catalog.mig_profiles(types[0])
        if provisioner != "karpenter":
            raise ValueError(f"{SUBKEY_MARK}mode: mig needs provisioner: karpenter (its nodes partition their GPUs "
                             "at boot, before the kubelet starts); a managed pool may time-slice")
        if not profiles:
            with_mig = sorted(f.family for f in gpu_catalog.GPU_FAMILIES.values() if f.mig_profiles)
            raise ValueError(f"{SUBKEY_MARK}mode: {gpu} has no MIG; MIG needs one of the families "
                             f"{', '.join(with_mig)}; share it with time-slicing instead")
        if value.mig_profile not in profiles:
            raise ValueError(f"{SUBKEY_MARK}migProfile: is not a MIG profile of {gpu}; allowed: {', '.join(profiles)}")
        return value

    @model_validator(mode="after")
    def _no_desired_size_for_karpenter(self) -> GpuPoolConfig:
        # desiredSize is declared (by _Scaling) before provisioner, so it is checked once both are known.
        if self.is_karpenter and self.desired_size is not None:
            raise ValueError(f"{SUBKEY_MARK}desiredSize: is only used by managed pools (Karpenter sizes a pool by its "
                             "pending pods; minSize is its floor)")
        return self

    @property
    def is_karpenter(self) -> bool:
        return self.provisioner == "karpenter"

    @property
    def karpenter_capacity_types(self) -> list[str]:
        """The pool's capacity types as Karpenter's `karpenter.sh/capacity-type` label names them."""
        return [KARPENTER_CAPACITY_TYPES[c] for c in self.capacity_types]

    @property
    def gpu(self) -> gpu_catalog.GpuFamily:
        return gpu_catalog.GPU_FAMILIES[gpu_catalog.family_of(self.instance_types[0])]

    @property
    def slices_per_gpu(self) -> int:
        """What each GPU is advertised as: 1, the time-slicing replicas, or the MIG instances of the profile."""
        if self.sharing.mode == "time-slicing":
            return int(self.sharing.replicas or 1)
        if self.sharing.mode == "mig":
            return gpu_catalog.mig_profiles(self.instance_types[0]).get(str(self.sharing.mig_profile), 1)
        return 1

    @property
    def gpus_per_node(self) -> int:
        """GPUs a node of the pool brings, counting its largest instance type (what a budget must allow for)."""
        return max(gpu_catalog.gpus_per_instance(t) for t in self.instance_types)

    @property
    def min_gpus_per_node(self) -> int:
        """GPUs a node of the pool brings for certain (its smallest instance type)."""
        return min(gpu_catalog.gpus_per_instance(t) for t in self.instance_types)

    @property
    def max_gpus(self) -> int:
        """GPUs the pool may hold at maxSize (every node of its largest type): what a budget must allow for."""
        return self.max_size * self.gpus_per_node

    @property
    def sure_gpus(self) -> int:
        """GPUs the pool holds at maxSize for certain (every node of its smallest type)."""
        return self.max_size * self.min_gpus_per_node

    @property
    def sure_gpu_slices(self) -> int:
        """nvidia.com/gpu the pool surely advertises at maxSize: what a quota (which counts slices) may promise."""
        return self.sure_gpus * self.slices_per_gpu


class ModelStoreConfig(FrozenModel):
    """The S3 bucket that holds model artifacts."""

    deletion_protection: Literal["protect", "retain", "none"] = Field(
        default="protect",
        description="`protect` blocks deletes, `retain` keeps buckets when the stack is destroyed, `none` is unsafe.",
    )
    noncurrent_version_expiration_days: StrictInt = Field(
        default=90, ge=1, le=3650,
        description="Days replaced or deleted model versions stay recoverable (at least 30 in prod)."
    )
    access_log_expiration_days: StrictInt = Field(
        default=365, ge=1, le=3650, description="Days the bucket's access logs are kept (at least 365 in prod)."
    )

    _prod = field_validator("noncurrent_version_expiration_days", "access_log_expiration_days")(prod_minimum)


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


def _teams_fit_the_pools(teams: tuple[TeamEntry, ...], pools: tuple[GpuPoolConfig, ...]) -> None:
    """Dedicated pools name onboarded teams; no team's GPU quota exceeds what the pools it may use can hold."""
    onboarded = {team.name for team in teams}
    strangers = [f"{pool.name} (dedicatedTeam {pool.dedicated_team!r})" for pool in pools
                 if pool.dedicated_team and pool.dedicated_team not in onboarded]
    if strangers:
        raise ValueError(f"dedicate pools to onboarded teams only; not in `teams`: {', '.join(strangers)}; "
                         f"onboarded: {', '.join(sorted(onboarded)) or 'none'}")
    oversized: list[tuple[str, str]] = []
    for index, team in enumerate(teams):
        usable = [pool for pool in pools if pool.dedicated_team in (None, team.name)]
        capacity = sum(pool.sure_gpu_slices for pool in usable)
        if team.quota.gpu > capacity:
            where = ", ".join(f"{pool.name} {pool.sure_gpu_slices}" for pool in usable) or "none"
            slices = ", a shared GPU as its slices" if any(pool.slices_per_gpu > 1 for pool in usable) else ""
            oversized.append((f"[{index}].quota.gpu", f"{team.quota.gpu} GPUs is more than the pools team "
                                                      f"{team.name} may use surely hold at maxSize ({capacity}: "
                                                      f"{where}; each pool counted with its smallest instance "
                                                      f"type{slices})"))
    if oversized:
        raise ValueError(problems_at_subkeys(oversized))


class PlatformConfig(_Common):
    """A platform stack: one per environment, owns the cluster and shared services."""

    kind: Literal["platform"] = "platform"
    network: NetworkConfig = Field(default_factory=NetworkConfig)
    # Validated even when left out: the default (a private endpoint and no allowed networks) reaches no one.
    cluster: ClusterConfig = Field(default_factory=ClusterConfig, validate_default=True)
    gpu_pools: tuple[GpuPoolConfig, ...] = Field(min_length=1)
    # After gpuPools: a team's quota is checked against the pools it may use.
    teams: tuple[TeamEntry, ...] = Field(
        default=(), validate_default=True,
        description="Teams onboarded onto the platform; each gets a namespace, guardrails, a serving role and "
                    "namespace-scoped access for its CI.")
    model_store: ModelStoreConfig = Field(default_factory=ModelStoreConfig)
    observability: ObservabilityConfig = Field(
        description="Metrics and logs; every key defaults per environment (see ENVIRONMENT_DEFAULTS).")
    autoscaling: PlatformAutoscalingConfig = Field(
        description="What the teams' model autoscaling may do; scaleToZero defaults to true in dev only.")
    recovery: RecoveryConfig | None = Field(
        default=None, validate_default=True,
        description="Disaster recovery (docs/recovery.md): the region data is replicated to (required in prod), or "
                    "in a recovery stack the platform stack it restores.")

    @model_validator(mode="before")
    @classmethod
    def _observability_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = {**data, "observability": with_environment_defaults(data.get("observability"),
                                                                          data.get("environment")),
                    "autoscaling": with_scale_to_zero_default(data.get("autoscaling"), data.get("environment"))}
        return data

    @field_validator("autoscaling")
    @classmethod
    def _prod_keeps_a_floor(cls, value: PlatformAutoscalingConfig, info: ValidationInfo) -> PlatformAutoscalingConfig:
        if value.scale_to_zero and info.data.get("environment") == "prod":
            raise ValueError(f"{SUBKEY_MARK}scaleToZero: must be false in prod: a model at zero replicas answers no "
                             "request until a node and a replica have started (minutes on a GPU)")
        return value

    @field_validator("recovery")
    @classmethod
    def _recovery_fits_the_stack(cls, value: RecoveryConfig | None, info: ValidationInfo) -> RecoveryConfig | None:
        return check_recovery(value, environment=info.data.get("environment"), region=info.data.get("region"),
                              project=info.data.get("project"))

    @property
    def karpenter_pools(self) -> tuple[GpuPoolConfig, ...]:
        return tuple(pool for pool in self.gpu_pools if pool.is_karpenter)

    @field_validator("gpu_pools")
    @classmethod
    def _unique_pool_names(cls, value: tuple[GpuPoolConfig, ...]) -> tuple[GpuPoolConfig, ...]:
        names = [pool.name for pool in value]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"pool names must be unique; repeated: {', '.join(duplicates)}")
        return value

    @field_validator("teams")
    @classmethod
    def _teams_are_unique_and_own_their_pools(cls, value: tuple[TeamEntry, ...],
                                              info: ValidationInfo) -> tuple[TeamEntry, ...]:
        problems: list[tuple[str, str]] = []
        names = [team.name for team in value]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            problems.append(("", f"team names must be unique; repeated: {', '.join(repeated)}"))
        principals = [team.ci_principal_arn for team in value]
        shared = sorted({p for p in principals if principals.count(p) > 1})
        if shared:
            problems.append(("", f"each team needs its own CI principal (its access is confined to its namespace); "
                                 f"shared: {', '.join(shared)}"))
        cluster = info.data.get("cluster")
        admitted = {entry.principal_arn for entry in cluster.access_entries} if cluster else set()
        twice = sorted(set(principals) & admitted)
        if twice:
            problems.append(("", f"a team's CI principal gets its access entry from the team; remove it from "
                                 f"cluster.accessEntries: {', '.join(twice)}"))
        if problems:
            raise ValueError(problems_at_subkeys(problems))
        if "gpu_pools" in info.data:
            _teams_fit_the_pools(value, info.data["gpu_pools"])
        return value

    @field_validator("network")
    @classmethod
    def _prod_is_highly_available(cls, value: NetworkConfig, info: ValidationInfo) -> NetworkConfig:
        if info.data.get("environment") == "prod" and value.existing_vpc_id is None and value.nat_gateways != "perAz":
            raise ValueError(f"{SUBKEY_MARK}natGateways: must be perAz in prod (one NAT gateway per AZ)")
        return value

    @field_validator("cluster")
    @classmethod
    def _endpoint_is_reachable(cls, value: ClusterConfig, info: ValidationInfo) -> ClusterConfig:
        """A private-only endpoint needs allowed networks, and each one outside the VPC a route back.

        https://docs.aws.amazon.com/eks/latest/userguide/cluster-endpoint.html#private-access
        """
        if not value.endpoint_public_access and not value.private_access_cidrs:
            raise ValueError(f"{SUBKEY_MARK}privateAccessCidrs: must list the private networks that deploy to the "
                             "cluster (CI runners, VPN) when endpointPublicAccess is false: the endpoint is private "
                             "and nothing outside the cluster could reach it")
        network = info.data.get("network")
        if network is None or network.existing_vpc_id is not None:
            return value  # invalid network (reported there), or a VPC whose routes are its owner's
        unrouted = unrouted_networks(value.private_access_cidrs, network.vpc_cidr, [r.cidr for r in network.routes])
        if unrouted:
            lies, them = ("lies", "it") if len(unrouted) == 1 else ("lie", "them")
            raise ValueError(f"{SUBKEY_MARK}privateAccessCidrs: {', '.join(unrouted)} {lies} outside the VPC "
                             f"({network.vpc_cidr}) and no network.routes entry covers {them}: the API's replies would "
                             f"go to the NAT gateway; add a route through the transit gateway or VPN gateway that "
                             f"reaches {them}")
        return value


class TeamConfig(_Common):
    """A team stack: one per team and environment, owns only team-scoped resources."""

    kind: Literal["team"] = "team"
    team: TeamName
    platform_stack: StackReferenceName
    models: tuple[ModelDeployment, ...] = Field(default=(), description="Models the team serves.")

    @field_validator("models")
    @classmethod
    def _unique_models(cls, value: tuple[ModelDeployment, ...]) -> tuple[ModelDeployment, ...]:
        return unique_names(value)

    @field_validator("models")
    @classmethod
    def _prod_keeps_a_floor(cls, value: tuple[ModelDeployment, ...],
                            info: ValidationInfo) -> tuple[ModelDeployment, ...]:
        # No prod platform allows scale-to-zero (PlatformConfig), so this needs no platform stack to tell; caught
        # here, before the stack reference is read and anything is registered.
        if info.data.get("environment") != "prod":
            return value
        idle = [(f"[{index}].autoscaling.min", f"must be at least 1 in prod: no prod platform lets {model.name} "
                                               "idle at zero replicas (autoscaling.scaleToZero is false in prod)")
                for index, model in enumerate(value) if model.autoscaling is not None and model.autoscaling.min == 0]
        if idle:
            raise ValueError(problems_at_subkeys(idle))
        return value

    @property
    def gpus_at_max_replicas(self) -> int:
        """GPUs the team's models ask for when every one runs at maxReplicas (checked against the quota)."""
        return sum(m.resources.gpu * m.scaling.max for m in self.models)

    @field_validator("platform_stack")
    @classmethod
    def _same_environment(cls, value: str, info: ValidationInfo) -> str:
        environment, project = info.data.get("environment"), info.data.get("project")
        if project and value.split("/")[1] != project:
            raise ValueError(f"must name a stack of this project (<org>/{project}/<environment>)")
        # A team moves to its environment's recovery stack by naming it here (docs/recovery.md).
        if environment and value.rsplit("/", 1)[-1] not in (environment, f"{environment}{RECOVERY_SUFFIX}"):
            raise ValueError(f"must name the platform stack of the team's environment (.../{environment}) or its "
                             f"recovery stack (.../{environment}{RECOVERY_SUFFIX})")
        return value


StackConfig = PlatformConfig | TeamConfig
