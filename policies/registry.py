"""The pack: its name and every policy in it, in one place (one module per policy)."""

from __future__ import annotations

from pulumi_policy import Policy

from policies.aws.cloudwatch import loggroup_retention
from policies.aws.ec2 import (
    launch_template_ebs_encrypted,
    launch_template_imdsv2,
    vpc_flow_logs,
    vpc_nat_per_az,
)
from policies.aws.eks import (
    cluster_audit_logging,
    cluster_endpoint_private,
    cluster_secrets_encryption,
    cluster_supported_version,
    nodegroup_gpu_budget,
    nodegroup_gpu_on_demand,
    nodegroup_gpu_taint,
    nodegroup_instance_types,
    nodegroup_launch_template,
)
from policies.aws.kms import (
    key_rotation,
)
from policies.aws.s3 import (
    bucket_access_logging,
    bucket_deletion_protection,
    bucket_log_retention,
    bucket_noncurrent_version_retention,
    bucket_object_torchserve_config,
    bucket_public_access_block,
    bucket_replication,
    bucket_sse_kms,
    bucket_tls_only,
    bucket_versioning,
)
from policies.aws.tagging import (
    resource_allowed_region,
    resource_required_tags,
)
from policies.kubernetes.core import (
    admission_approved_registries,
    namespace_pod_security,
    team_namespace_default_deny,
    team_namespace_gpu_quota_capacity,
    team_namespace_resource_quota,
)
from policies.kubernetes.elastic import (
    elasticsearch_tls,
    snapshot_retention,
)
from policies.kubernetes.helm import (
    grafana_no_anonymous_access,
    grafana_no_default_password,
    release_pinned_version,
)
from policies.kubernetes.karpenter import (
    nodepool_limits,
    nodepool_spot,
)
from policies.kubernetes.keda import (
    scaledobject_floor,
)
from policies.kubernetes.kserve import (
    inferenceservice_approved_images,
    inferenceservice_gpu_toleration,
    inferenceservice_metrics_scrape,
    inferenceservice_pinned_images,
    inferenceservice_resources,
    inferenceservice_service_account,
)
from policies.kubernetes.nvidia import (
    gpu_sharing_valid,
)
from policies.kubernetes.workloads import (
    pod_no_added_capabilities,
    pod_no_host_namespaces,
    pod_no_host_path,
    pod_no_privileged,
)

PACK_NAME = "ai-platform-guardrails"

ALL_POLICIES: list[Policy] = [
    launch_template_ebs_encrypted.aws_ec2_launchtemplate_ebs_encrypted,
    launch_template_imdsv2.aws_ec2_launchtemplate_imdsv2,
    cluster_audit_logging.aws_eks_cluster_audit_logging,
    cluster_endpoint_private.aws_eks_cluster_endpoint_private,
    cluster_secrets_encryption.aws_eks_cluster_secrets_encryption,
    cluster_supported_version.aws_eks_cluster_supported_version,
    nodegroup_gpu_budget.aws_eks_nodegroup_gpu_budget,
    nodegroup_gpu_on_demand.aws_eks_nodegroup_gpu_on_demand,
    vpc_flow_logs.aws_ec2_vpc_flow_logs,
    vpc_nat_per_az.aws_ec2_vpc_nat_per_az,
    nodegroup_gpu_taint.aws_eks_nodegroup_gpu_taint,
    nodegroup_instance_types.aws_eks_nodegroup_instance_types,
    nodegroup_launch_template.aws_eks_nodegroup_launch_template,
    key_rotation.aws_kms_key_rotation,
    bucket_access_logging.aws_s3_bucket_access_logging,
    bucket_deletion_protection.aws_s3_bucket_deletion_protection,
    bucket_object_torchserve_config.aws_s3_bucketobject_torchserve_config,
    bucket_public_access_block.aws_s3_bucket_public_access_block,
    bucket_replication.aws_s3_bucket_replication,
    bucket_sse_kms.aws_s3_bucket_sse_kms,
    bucket_tls_only.aws_s3_bucket_tls_only,
    bucket_versioning.aws_s3_bucket_versioning,
    bucket_log_retention.aws_s3_bucket_log_retention,
    bucket_noncurrent_version_retention.aws_s3_bucket_noncurrent_version_retention,
    loggroup_retention.aws_cloudwatch_loggroup_retention,
    resource_allowed_region.aws_all_resource_allowed_region,
    resource_required_tags.aws_all_resource_required_tags,
    admission_approved_registries.kubernetes_admission_approved_registries,
    namespace_pod_security.kubernetes_core_namespace_pod_security_restricted,
    team_namespace_default_deny.kubernetes_networking_namespace_default_deny,
    team_namespace_resource_quota.kubernetes_core_namespace_gpu_resource_quota,
    team_namespace_gpu_quota_capacity.kubernetes_core_namespace_gpu_quota_capacity,
    elasticsearch_tls.kubernetes_elastic_elasticsearch_tls,
    snapshot_retention.kubernetes_elastic_snapshot_retention,
    grafana_no_anonymous_access.kubernetes_helm_grafana_no_anonymous_access,
    grafana_no_default_password.kubernetes_helm_grafana_no_default_password,
    release_pinned_version.kubernetes_helm_release_pinned_version,
    inferenceservice_approved_images.kubernetes_kserve_inferenceservice_approved_images,
    inferenceservice_gpu_toleration.kubernetes_kserve_inferenceservice_gpu_toleration,
    inferenceservice_metrics_scrape.kubernetes_kserve_inferenceservice_metrics_scrape,
    inferenceservice_pinned_images.kubernetes_kserve_inferenceservice_pinned_images,
    inferenceservice_resources.kubernetes_kserve_inferenceservice_resources,
    inferenceservice_service_account.kubernetes_kserve_inferenceservice_service_account,
    nodepool_limits.kubernetes_karpenter_nodepool_limits,
    nodepool_spot.kubernetes_karpenter_nodepool_spot,
    gpu_sharing_valid.kubernetes_nvidia_gpu_sharing_valid,
    scaledobject_floor.kubernetes_keda_scaledobject_floor,
    pod_no_added_capabilities.kubernetes_core_pod_no_added_capabilities,
    pod_no_host_namespaces.kubernetes_core_pod_no_host_namespaces,
    pod_no_host_path.kubernetes_core_pod_no_host_path,
    pod_no_privileged.kubernetes_core_pod_no_privileged,
]
