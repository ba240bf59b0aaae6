"""A platform stack: network, EKS with GPU pools, block storage and the model store of one environment."""

from __future__ import annotations

from typing import Any

import pulumi

from infra.aws_context import AwsContext
from infra.components.admission_policies import AdmissionPolicies, AdmissionPoliciesArgs
from infra.components.block_storage import BlockStorage, BlockStorageArgs
from infra.components.cluster import Cluster, ClusterArgs
from infra.components.cluster_access import ClusterAccess, ClusterAccessArgs
from infra.components.cluster_autoscaler import ClusterAutoscaler, ClusterAutoscalerArgs
from infra.components.gpu_metrics import GpuMetrics, GpuMetricsArgs
from infra.components.gpu_node_pool import GpuNodePool, GpuNodePoolArgs, pool_contract
from infra.components.karpenter import Karpenter, KarpenterArgs
from infra.components.karpenter_node_pool import KarpenterGpuPool, KarpenterGpuPoolArgs
from infra.components.keda import Keda, KedaArgs
from infra.components.kms_key import CustomerKey, CustomerKeyArgs
from infra.components.kserve import KServe, KServeArgs
from infra.components.log_archive import ACCESS_LOG_EXPIRATION_DAYS, LogArchive, LogArchiveArgs, archive_lifecycle_rules
from infra.components.log_retention import SNAPSHOT_BASE_PATH, recovery_base_path
from infra.components.logging_stack import LoggingStack, LoggingStackArgs
from infra.components.model_store import ModelStore, ModelStoreArgs, deletion_options, lifecycle_rules
from infra.components.monitoring import PROMETHEUS_URL, MetricsStack, MetricsStackArgs
from infra.components.network import Network, NetworkArgs
from infra.components.nvidia_device_plugin import NvidiaDevicePlugin, NvidiaDevicePluginArgs
from infra.components.replication import ReplicaSource, Replication, ReplicationArgs
from infra.components.team_workspace import TeamWorkspace, TeamWorkspaceArgs
from infra.config import PlatformConfig
from infra.config.teams import TeamEntry
from infra.restore import RestoredData, restored_data
from infra.tagging import register_tagging

# One customer key per purpose, so revoking or auditing one use never touches another.
KEY_PURPOSES: dict[str, tuple[str, tuple[str, ...]]] = {
    "secrets": ("Envelope encryption of Kubernetes secrets", ()),
    "volumes": ("EBS volumes of nodes and persistent volumes", ("autoscaling",)),
    "logs": ("Control-plane and VPC flow log groups", ("logs",)),
    "models": ("Model artifacts in the model store", ()),
    "log-archive": ("Elasticsearch log snapshots in the log archive", ()),
}


def team_contract(team: TeamEntry, workspace: TeamWorkspace) -> dict[str, Any]:
    """What a team stack needs to know about its onboarding (exported by the platform stack)."""
    return {"namespace": workspace.namespace, "modelPrefix": workspace.model_prefix,
            "servingRoleArn": workspace.role_arn, "deployPolicyArn": workspace.deploy_policy_arn,
            "ciPrincipalArn": team.ci_principal_arn, "costCenter": team.cost_center,
            "quota": team.quota.model_dump(by_alias=True)}


def cluster_name(config: PlatformConfig) -> str:
    return f"aip-{config.stack}"


def replicate(prefix: str, config: PlatformConfig, ctx: AwsContext, keys: dict[str, pulumi.Output[str]],
              store: ModelStore, archive: LogArchive) -> Replication | None:
    """The model store and the log archive replicated into the recovery region, where the config names one.

    Deleted models stay in the replica (delete markers are not replicated): a mistaken or malicious delete in the
    primary cannot reach the copy. Elasticsearch's own deletions of expired snapshot files are replicated, so the
    replica keeps logs no longer than the archive does.
    """
    recovery = config.recovery
    if recovery is None or recovery.region is None or store.versioning is None or archive.versioning is None:
        return None
    logs = config.observability.logs
    return Replication(f"{prefix}-replication", ReplicationArgs(
        region=recovery.region, time_control=bool(recovery.replication_time_control), key_alias_prefix=prefix,
        aws=ctx, sources=(
            ReplicaSource(purpose="models", bucket=store.bucket, bucket_arn=store.bucket_arn,
                          kms_key_arn=keys["models"], versioning=store.versioning,
                          rules=lifecycle_rules(config.model_store),
                          log_expiration_days=config.model_store.access_log_expiration_days,
                          deletion_protection=config.model_store.deletion_protection, replicate_deletes=False),
            ReplicaSource(purpose="log-archive", bucket=archive.bucket, bucket_arn=archive.bucket_arn,
                          kms_key_arn=keys["log-archive"], versioning=archive.versioning,
                          rules=archive_lifecycle_rules(), log_expiration_days=ACCESS_LOG_EXPIRATION_DAYS,
                          deletion_protection=logs.archive_deletion_protection, replicate_deletes=True))))


def recovery_contract(config: PlatformConfig, replication: Replication | None,
                      restored: RestoredData | None) -> dict[str, Any]:
    """Output `recovery`: the replicas a recovery stack serves from, or the stack this one restores; empty when
    the stack does neither."""
    if replication is not None and config.recovery is not None:
        return {"region": config.recovery.region,
                "replicationTimeControl": bool(config.recovery.replication_time_control),
                "replicas": {purpose: replica.contract() for purpose, replica in replication.replicas.items()}}
    if restored is not None:
        return {"restoredFrom": restored.source}
    return {}


def build_platform(config: PlatformConfig) -> dict[str, Any]:
    """Create the platform stack's resources and return its outputs (see platform_outputs)."""
    register_tagging(config.tags)
    ctx = AwsContext.lookup(config.region)
    # Named after the stack (the environment, or `<env>-dr`): a recovery stack's account-wide names (IAM, aliases)
    # never collide with those of the stack it restores.
    prefix = f"aip-{config.stack}"
    # A recovery stack serves from the replicas of the stack it restores, with their keys, and creates neither.
    restored = restored_data(config, prefix) if config.recovery and config.recovery.restores else None
    # Retained model artifacts stay readable only while their key exists: it shares the buckets' protection.
    model_data = deletion_options(config.model_store.deletion_protection)
    # Likewise archived log snapshots and the key that decrypts them.
    key_deletion = {"models": model_data,
                    "log-archive": deletion_options(config.observability.logs.archive_deletion_protection)}
    keys = {
        purpose: CustomerKey(f"{prefix}-{purpose}", CustomerKeyArgs(
            alias=f"{prefix}-{purpose}", description=description, aws=ctx, grants_for=grants,
            deletion=key_deletion.get(purpose)))
        for purpose, (description, grants) in KEY_PURPOSES.items()
        if restored is None or purpose not in ("models", "log-archive")
    }
    key_arns = {purpose: key.arn for purpose, key in keys.items()}
    if restored is not None:
        key_arns.update({"models": restored.models_key_arn, "log-archive": restored.log_archive_key_arn})
    name = cluster_name(config)
    network = Network(f"{prefix}-network", NetworkArgs(
        config=config.network, cluster_name=name, flow_log_key_arn=keys["logs"].arn,
        flow_log_retention_days=config.cluster.log_retention_days, aws=ctx))
    cluster = Cluster(f"{prefix}-cluster", ClusterArgs(
        config=config.cluster, cluster_name=name, subnet_ids=network.private_subnet_ids,
        secrets_key_arn=keys["secrets"].arn, logs_key_arn=keys["logs"].arn, volume_key_arn=keys["volumes"].arn,
        aws=ctx))
    # Karpenter runs only where some pool uses it; managed pools stay node groups scaled by the cluster autoscaler.
    karpenter = Karpenter(f"{prefix}-karpenter", KarpenterArgs(
        cluster_name=name, cluster_endpoint=cluster.endpoint, cluster_security_group_id=cluster.security_group_id,
        oidc_provider_arn=cluster.oidc_provider_arn, oidc_issuer_url=cluster.oidc_issuer_url,
        volume_key_arn=keys["volumes"].arn, system_nodes=config.cluster.system_nodes.min_size,
        provider=cluster.provider, aws=ctx)) if config.karpenter_pools else None
    pools: list[pulumi.Resource] = []
    for pool in config.gpu_pools:
        if karpenter is not None and pool.is_karpenter:
            pools.append(KarpenterGpuPool(f"{prefix}-gpu-{pool.name}", KarpenterGpuPoolArgs(
                pool=pool, cluster_name=name, node_role_name=karpenter.node_role_name,
                volume_key_arn=keys["volumes"].arn, tags=config.tags,
                subnet_ids=config.network.existing_private_subnet_ids, capacity_namespace=karpenter.capacity_namespace,
                placeholder_priority_class=karpenter.placeholder_priority_class, provider=cluster.provider,
                depends_on=karpenter.ready)))
        else:
            pools.append(GpuNodePool(f"{prefix}-gpu-{pool.name}", GpuNodePoolArgs(
                pool=pool, cluster_name=cluster.name, node_role_arn=cluster.node_role_arn,
                subnet_ids=network.private_subnet_ids, volume_key_arn=keys["volumes"].arn)))
    NvidiaDevicePlugin(f"{prefix}-nvidia-device-plugin", NvidiaDevicePluginArgs(
        provider=cluster.provider, pools=config.gpu_pools, node_pools=tuple(pools)))
    storage = BlockStorage(f"{prefix}-block-storage", BlockStorageArgs(
        cluster_name=cluster.name, oidc_provider_arn=cluster.oidc_provider_arn,
        oidc_issuer_url=cluster.oidc_issuer_url, volume_key_arn=keys["volumes"].arn,
        provider=cluster.provider, aws=ctx))
    KServe(f"{prefix}-kserve", KServeArgs(region=config.region, provider=cluster.provider))
    metrics = MetricsStack(f"{prefix}-metrics", MetricsStackArgs(
        config=config.observability.metrics, cluster_name=name, storage_class=storage.storage_class_name,
        provider=cluster.provider, depends_on=(storage,), alerts=config.observability.alerts))
    GpuMetrics(f"{prefix}-gpu-metrics", GpuMetricsArgs(
        provider=cluster.provider, node_pools=tuple(pools), depends_on=(metrics,)))
    ClusterAutoscaler(f"{prefix}-cluster-autoscaler", ClusterAutoscalerArgs(
        cluster_name=name, cluster_version=config.cluster.version, oidc_provider_arn=cluster.oidc_provider_arn,
        oidc_issuer_url=cluster.oidc_issuer_url, provider=cluster.provider, aws=ctx, monitoring=(metrics,)))
    Keda(f"{prefix}-keda", KedaArgs(cluster_name=name, provider=cluster.provider, monitoring=(metrics,)))
    # A recovery stack snapshots beside the replicated snapshots, which it restores from read-only.
    own_snapshots = recovery_base_path(config.stack) if restored else SNAPSHOT_BASE_PATH
    archive = LogArchive(f"{prefix}-log-archive", LogArchiveArgs(
        config=config.observability.logs, kms_key_arn=key_arns["log-archive"],
        oidc_provider_arn=cluster.oidc_provider_arn, oidc_issuer_url=cluster.oidc_issuer_url, aws=ctx,
        existing=restored.log_archive if restored else None, write_prefix=own_snapshots if restored else None))
    LoggingStack(f"{prefix}-logging", LoggingStackArgs(
        config=config.observability.logs, storage_class=storage.storage_class_name, archive_bucket=archive.bucket,
        archive_role_arn=archive.role_arn, region=config.region, provider=cluster.provider, depends_on=(storage,),
        monitoring=(metrics,), snapshot_base_path=own_snapshots, restore_repository=restored is not None))
    AdmissionPolicies(f"{prefix}-admission", AdmissionPoliciesArgs(
        approved_registries=config.cluster.approved_registries, account_id=ctx.account_id,
        provider=cluster.provider))
    store = ModelStore(f"{prefix}-model-store", ModelStoreArgs(
        config=config.model_store, kms_key_arn=key_arns["models"], aws=ctx,
        existing=restored.models if restored else None))
    replication = replicate(prefix, config, ctx, key_arns, store, archive)
    ClusterAccess(f"{prefix}-access", ClusterAccessArgs(
        entries=config.cluster.access_entries, cluster_name=cluster.name, partition=ctx.partition))
    teams = {
        team.name: TeamWorkspace(f"{prefix}-team-{team.name}", TeamWorkspaceArgs(
            team=team, region=config.region, cluster_name=cluster.name, oidc_provider_arn=cluster.oidc_provider_arn,
            oidc_issuer_url=cluster.oidc_issuer_url, bucket_arn=store.bucket_arn, kms_key_arn=key_arns["models"],
            boundary_arn=store.team_boundary_arn, provider=cluster.provider,
            # Deleting a namespace deletes the team's models with it; dev may lose them, the others may not.
            protect_namespace=config.environment != "dev"))
        for team in config.teams
    }
    return {
        "environment": config.environment,
        "region": config.region,
        "clusterName": cluster.name,
        "clusterEndpoint": cluster.endpoint,
        "clusterCertificateAuthority": cluster.certificate_authority,
        "kubeconfig": cluster.kubeconfig,
        "oidcProviderArn": cluster.oidc_provider_arn,
        "oidcIssuerUrl": cluster.oidc_issuer_url,
        "vpcId": network.vpc_id,
        "privateSubnetIds": network.private_subnet_ids,
        "modelStoreBucket": store.bucket,
        "modelStoreBucketArn": store.bucket_arn,
        "modelStoreKmsKeyArn": key_arns["models"],
        "modelStoreLogBucket": store.log_bucket,
        "teamRoleBoundaryArn": store.team_boundary_arn,
        "storageClass": storage.storage_class_name,
        "gpuPools": [pool_contract(pool) for pool in config.gpu_pools],
        "teams": {team.name: team_contract(team, teams[team.name]) for team in config.teams},
        "grafanaAdminSecret": f"{metrics.namespace}/{metrics.grafana_admin_secret}",
        # What the teams' ScaledObjects read their metrics from, and whether their models may idle at zero.
        "prometheusUrl": PROMETHEUS_URL,
        "scaleToZero": config.autoscaling.scale_to_zero,
        # Where the model store and the log archive are replicated (what a recovery stack serves from).
        "recovery": recovery_contract(config, replication, restored),
    }
