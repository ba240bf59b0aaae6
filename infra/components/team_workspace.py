"""A team's own corner of the platform: its namespace, model-store prefix and serving identity."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra.components.irsa_role import irsa_role
from infra.config.serving import QuotaConfig
from infra.iam_policies import TEAMS_PREFIX, prefix_read_policy
from infra.platform_outputs import PlatformReference

SERVING_SERVICE_ACCOUNT = "model-serving"


def model_prefix(team: str) -> str:
    """Where a team's model artifacts live in the shared model store."""
    return f"{TEAMS_PREFIX}{team}/"


def namespace_labels(team: str) -> dict[str, str]:
    """Pod Security Admission enforces the `restricted` profile on every pod of the team.

    https://kubernetes.io/docs/concepts/security/pod-security-admission/
    """
    labels = {"kubernetes.io/metadata.name": team}
    for mode in ("enforce", "audit", "warn"):
        labels[f"pod-security.kubernetes.io/{mode}"] = "restricted"
        labels[f"pod-security.kubernetes.io/{mode}-version"] = "latest"
    return labels


# Namespaces whose pods may call a team's models, and the one Prometheus scrapes from.
GATEWAY_LABEL = "ai-platform.io/inference-gateway"
MONITORING_NAMESPACE = "monitoring"
INFERENCE_PORT, METRICS_PORTS = 8080, (8080, 8082)


def network_policies() -> dict[str, dict[str, Any]]:
    """Everything is denied by default; callers of the models and Prometheus get in, DNS and HTTPS get out.

    Serving relies on this: TorchServe's own listeners stay on the pod's loopback, its token
    authorization is off behind KServe, and nothing outside these rules reaches the pods. Egress is
    DNS and HTTPS only (the model store, STS for IRSA).
    https://kubernetes.io/docs/concepts/services-networking/network-policies/
    """
    def ports(*numbers: int, protocol: str = "TCP") -> list[dict[str, Any]]:
        return [{"protocol": protocol, "port": n} for n in numbers]

    return {
        "default-deny": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
        "allow-dns": {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{
            "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
            "ports": ports(53, protocol="UDP") + ports(53)}]},
        "allow-https-egress": {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"ports": ports(443)}]},
        "allow-inference-egress": {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{
            "to": [{"podSelector": {}}], "ports": ports(INFERENCE_PORT)}]},
        "allow-inference": {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{
            "from": [{"podSelector": {}},
                     {"namespaceSelector": {"matchLabels": {GATEWAY_LABEL: "true"}}}],
            "ports": ports(INFERENCE_PORT)}]},
        "allow-metrics-scrape": {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{
            "from": [{"namespaceSelector": {"matchLabels": {
                "kubernetes.io/metadata.name": MONITORING_NAMESPACE}}}],
            "ports": ports(*METRICS_PORTS)}]},
    }


def resource_quota(quota: QuotaConfig) -> dict[str, str]:
    """Hard limits of the namespace, GPUs included, so one team cannot take the whole fleet."""
    return {"requests.cpu": quota.cpu, "limits.cpu": quota.cpu, "requests.memory": quota.memory,
            "limits.memory": quota.memory, "requests.nvidia.com/gpu": str(quota.gpu), "pods": str(quota.pods)}


def limit_range() -> list[dict[str, Any]]:
    """Defaults for containers that set no resources (the quota rejects pods without them otherwise)."""
    return [{"type": "Container", "defaultRequest": {"cpu": "250m", "memory": "256Mi"},
             "default": {"cpu": "1", "memory": "1Gi"}}]


def s3_annotations(region: str) -> dict[str, str]:
    """Tell KServe's storage initializer to read the model store over HTTPS with the pod's IRSA identity.

    https://kserve.github.io/website/docs/model-serving/storage/providers/s3
    """
    return {"serving.kserve.io/s3-endpoint": f"s3.{region}.amazonaws.com", "serving.kserve.io/s3-region": region,
            "serving.kserve.io/s3-usehttps": "1", "serving.kserve.io/s3-useanoncredential": "false"}


@dataclass(frozen=True)
class TeamWorkspaceArgs:
    """Args of :class:`TeamWorkspace`.

    Attributes:
        team: Team name; also the namespace name.
        region: AWS region of the model store.
        platform: Outputs of the platform stack the team runs on.
        provider: Kubernetes provider whose default namespace is the team's.
        quota: The namespace's resource quota.
    """

    team: str
    region: str
    platform: PlatformReference
    provider: k8s.Provider
    quota: QuotaConfig = field(default_factory=QuotaConfig)


class TeamWorkspace(pulumi.ComponentResource):
    """Namespace (Pod Security `restricted`, ingress denied by default), an IRSA role reading only the
    team's prefix, and the serving account."""

    namespace: pulumi.Output[str]
    role_arn: pulumi.Output[str]
    model_prefix: str

    def __init__(self, name: str, args: TeamWorkspaceArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-platform:team:TeamWorkspace", name, None, opts)
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=args.provider)
        namespace = k8s.core.v1.Namespace(f"{name}-namespace", metadata=self._namespace_metadata(args.team),
                                          opts=k8s_opts)
        platform = args.platform
        role = irsa_role(f"{name}-model-reader", oidc_provider_arn=platform.require("oidcProviderArn"),
                         oidc_issuer_url=platform.require("oidcIssuerUrl"), namespace=args.team,
                         service_account=SERVING_SERVICE_ACCOUNT, parent=self,
                         description=f"Serving pods of team {args.team} read the team's models.",
                         permissions_boundary=platform.require("teamRoleBoundaryArn"))
        policy = pulumi.Output.all(platform.require("modelStoreBucketArn"),
                                   platform.require("modelStoreKmsKeyArn")).apply(
            lambda v: json.dumps(prefix_read_policy(v[0], model_prefix(args.team), v[1], args.region)))
        aws.iam.RolePolicy(f"{name}-model-reader", role=role.id, policy=policy,
                           opts=pulumi.ResourceOptions(parent=self))
        k8s.core.v1.ServiceAccount(
            f"{name}-serving",
            metadata={"name": SERVING_SERVICE_ACCOUNT, "namespace": args.team,
                      "annotations": {"eks.amazonaws.com/role-arn": role.arn, **s3_annotations(args.region)}},
            # IRSA mounts its own projected token; serving pods never call the Kubernetes API.
            automount_service_account_token=False,
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=[namespace]),
        )
        in_namespace = pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=[namespace])
        k8s.core.v1.ResourceQuota(f"{name}-quota", metadata={"name": "team-quota", "namespace": args.team},
                                  spec={"hard": resource_quota(args.quota)}, opts=in_namespace)
        k8s.core.v1.LimitRange(f"{name}-limits", metadata={"name": "container-defaults", "namespace": args.team},
                               spec={"limits": limit_range()}, opts=in_namespace)
        for policy, spec in network_policies().items():
            k8s.networking.v1.NetworkPolicy(
                f"{name}-{policy}", metadata={"name": policy, "namespace": args.team}, spec=spec,
                opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=[namespace]))
        self.namespace = namespace.metadata.name
        self.role_arn = role.arn
        self.model_prefix = model_prefix(args.team)
        self.register_outputs({"namespace": self.namespace, "role_arn": self.role_arn,
                               "model_prefix": self.model_prefix})

    @staticmethod
    def _namespace_metadata(team: str) -> dict[str, Any]:
        return {"name": team, "labels": namespace_labels(team)}
