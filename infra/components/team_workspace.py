"""A team onboarded by the platform: its namespace and guardrails, serving identity and CI access.

The platform stack creates all of it, so a team's own stack (its models, canaries and PodMonitors) runs
with rights confined to its namespace and can never rewrite its quota, limits or network policies.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra.components.irsa_role import irsa_role
from infra.config.serving import QuotaConfig
from infra.config.teams import TeamEntry
from infra.iam_policies import TEAMS_PREFIX, prefix_read_policy, team_deploy_policy

SERVING_SERVICE_ACCOUNT = "model-serving"


def model_prefix(team: str) -> str:
    """Where a team's model artifacts live in the shared model store."""
    return f"{TEAMS_PREFIX}{team}/"


def owner_tags(team: TeamEntry) -> dict[str, str]:
    """Tags of what the platform creates on a team's behalf: the team owns it and its cost center pays."""
    return {"team": team.name, "cost-center": team.cost_center}


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
# gRPC v2 of a kserve predictor with `protocol: grpc-v2`, admitted from exactly the callers of INFERENCE_PORT.
# TorchServe pods use the same number for their management API, bound to loopback, out of any peer's reach.
GRPC_INFERENCE_PORT = 8081


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
            "to": [{"podSelector": {}}], "ports": ports(INFERENCE_PORT, GRPC_INFERENCE_PORT)}]},
        "allow-inference": {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{
            "from": [{"podSelector": {}},
                     {"namespaceSelector": {"matchLabels": {GATEWAY_LABEL: "true"}}}],
            "ports": ports(INFERENCE_PORT, GRPC_INFERENCE_PORT)}]},
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


# What a team stack creates, by API group and resource: the only things the team's CI may write.
TEAM_STACK_RESOURCES: dict[str, tuple[str, ...]] = {
    "serving.kserve.io": ("inferenceservices",),
    "monitoring.coreos.com": ("podmonitors",),
    # A budget per model with two replicas or more, or on a Karpenter pool (inference_service.disruption_budget).
    "policy": ("poddisruptionbudgets",),
    # The ScaledObjects of models KEDA scales (model_autoscaling.py); KEDA itself writes the HPAs they own.
    "keda.sh": ("scaledobjects",),
}
WRITE_VERBS = ("get", "list", "watch", "create", "update", "patch", "delete")
# Read-only, so a team can see why its models are not ready (pods, their logs and events, the HPA).
DEBUG_READS: dict[str, tuple[str, ...]] = {
    "": ("pods", "pods/log", "events", "services", "endpoints"),
    "apps": ("deployments", "replicasets"),
    "autoscaling": ("horizontalpodautoscalers",),
}
READ_VERBS = ("get", "list", "watch")
DEPLOYER_ROLE = "team-deployer"


def deployer_group(team: str) -> str:
    """The Kubernetes group the team's CI principal is mapped to by its access entry."""
    return f"ai-platform:team-deployers:{team}"


def deployer_rules() -> list[dict[str, Any]]:
    """The namespaced Role of a team's CI: write what a team stack creates, read what explains its state.

    Deliberately absent: ResourceQuota, LimitRange, NetworkPolicy, Role and RoleBinding (the guardrails the
    platform sets), Secrets, and anything cluster-scoped.
    """
    rules = [{"apiGroups": [group], "resources": list(resources), "verbs": list(WRITE_VERBS)}
             for group, resources in TEAM_STACK_RESOURCES.items()]
    rules += [{"apiGroups": [group], "resources": list(resources), "verbs": list(READ_VERBS)}
              for group, resources in DEBUG_READS.items()]
    return rules


@dataclass(frozen=True)
class TeamWorkspaceArgs:
    """Args of :class:`TeamWorkspace`.

    Attributes:
        team: The team's entry in the platform config.
        region: AWS region of the model store.
        cluster_name: EKS cluster the team's CI gets an access entry to.
        oidc_provider_arn: The cluster's IAM OIDC provider (for the serving role).
        oidc_issuer_url: The cluster's OIDC issuer.
        bucket_arn: The model store bucket.
        kms_key_arn: The model store's customer key.
        boundary_arn: Permissions boundary of every team role.
        provider: Kubernetes provider of the cluster.
        protect_namespace: Refuse to delete the namespace (and with it every model of the team) when the team
            leaves `teams`; offboarding then unprotects it on purpose.
    """

    team: TeamEntry
    region: str
    cluster_name: pulumi.Input[str]
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer_url: pulumi.Input[str]
    bucket_arn: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    boundary_arn: pulumi.Input[str]
    provider: k8s.Provider
    protect_namespace: bool = True


class TeamWorkspace(pulumi.ComponentResource):
    """Namespace (Pod Security `restricted`, quota, limits, default-deny network policies), an IRSA role
    reading only the team's prefix with its service account, and the team CI's access: a namespace-scoped
    access entry bound to a Role, and an IAM policy for the team's model uploads."""

    namespace: pulumi.Output[str]
    role_arn: pulumi.Output[str]
    deploy_policy_arn: pulumi.Output[str]
    model_prefix: str

    def __init__(self, name: str, args: TeamWorkspaceArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-platform:team:TeamWorkspace", name, None, opts)
        team = args.team.name
        tags = owner_tags(args.team)
        labels = {f"ai-platform.io/{key}": value for key, value in tags.items()}
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=args.provider)
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace", metadata={"name": team, "labels": {**namespace_labels(team), **labels}},
            opts=pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(protect=args.protect_namespace)))
        in_namespace = pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=[namespace])

        def meta(object_name: str, **extra: Any) -> dict[str, Any]:
            return {"name": object_name, "namespace": team, "labels": labels, **extra}

        k8s.core.v1.ResourceQuota(f"{name}-quota", metadata=meta("team-quota"),
                                  spec={"hard": resource_quota(args.team.quota)}, opts=in_namespace)
        k8s.core.v1.LimitRange(f"{name}-limits", metadata=meta("container-defaults"),
                               spec={"limits": limit_range()}, opts=in_namespace)
        for policy, spec in network_policies().items():
            k8s.networking.v1.NetworkPolicy(f"{name}-{policy}", metadata=meta(policy), spec=spec, opts=in_namespace)
        role = self._serving_identity(name, args, tags, labels, in_namespace)
        deploy_policy = self._ci_access(name, args, tags, labels, in_namespace)
        self.namespace = namespace.metadata.name
        self.role_arn = role.arn
        self.deploy_policy_arn = deploy_policy.arn
        self.model_prefix = model_prefix(team)
        self.register_outputs({"namespace": self.namespace, "role_arn": self.role_arn,
                               "deploy_policy_arn": self.deploy_policy_arn, "model_prefix": self.model_prefix})

    def _serving_identity(self, name: str, args: TeamWorkspaceArgs, tags: dict[str, str], labels: dict[str, str],
                          in_namespace: pulumi.ResourceOptions) -> aws.iam.Role:
        team = args.team.name
        role = irsa_role(f"{name}-model-reader", oidc_provider_arn=args.oidc_provider_arn,
                         oidc_issuer_url=args.oidc_issuer_url, namespace=team,
                         service_account=SERVING_SERVICE_ACCOUNT, parent=self,
                         description=f"Serving pods of team {team} read the team's models.",
                         permissions_boundary=args.boundary_arn, tags=tags)
        policy = pulumi.Output.all(args.bucket_arn, args.kms_key_arn).apply(
            lambda v: json.dumps(prefix_read_policy(v[0], model_prefix(team), v[1], args.region)))
        aws.iam.RolePolicy(f"{name}-model-reader", role=role.id, policy=policy,
                           opts=pulumi.ResourceOptions(parent=self))
        k8s.core.v1.ServiceAccount(
            f"{name}-serving",
            metadata={"name": SERVING_SERVICE_ACCOUNT, "namespace": team, "labels": labels,
                      "annotations": {"eks.amazonaws.com/role-arn": role.arn, **s3_annotations(args.region)}},
            # IRSA mounts its own projected token; serving pods never call the Kubernetes API.
            automount_service_account_token=False,
            opts=in_namespace,
        )
        return role

    def _ci_access(self, name: str, args: TeamWorkspaceArgs, tags: dict[str, str], labels: dict[str, str],
                   in_namespace: pulumi.ResourceOptions) -> aws.iam.Policy:
        """The team's CI principal: mapped to a group bound to a Role in the team's namespace only.

        EKS's namespaced access policies (AmazonEKSEditPolicy...) cover built-in kinds only, not
        InferenceServices or PodMonitors, and would let the team edit its own NetworkPolicies; a Role
        grants exactly what a team stack needs.
        https://docs.aws.amazon.com/eks/latest/userguide/access-entries.html
        """
        team, group = args.team.name, deployer_group(args.team.name)
        role = k8s.rbac.v1.Role(f"{name}-deployer", metadata={"name": DEPLOYER_ROLE, "namespace": team,
                                                              "labels": labels},
                                rules=deployer_rules(), opts=in_namespace)
        k8s.rbac.v1.RoleBinding(
            f"{name}-deployer", metadata={"name": DEPLOYER_ROLE, "namespace": team, "labels": labels},
            role_ref={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": DEPLOYER_ROLE},
            subjects=[{"kind": "Group", "name": group, "apiGroup": "rbac.authorization.k8s.io"}],
            opts=pulumi.ResourceOptions.merge(in_namespace, pulumi.ResourceOptions(depends_on=[role])))
        aws.eks.AccessEntry(f"{name}-ci", cluster_name=args.cluster_name, principal_arn=args.team.ci_principal_arn,
                            type="STANDARD", kubernetes_groups=[group], tags=tags,
                            # One entry per principal: a replacement must remove the old one first.
                            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True))
        document = pulumi.Output.all(args.bucket_arn, args.kms_key_arn).apply(
            lambda v: json.dumps(team_deploy_policy(v[0], model_prefix(team), v[1], args.region)))
        return aws.iam.Policy(f"{name}-deploy", description=f"What team {team}'s CI needs to run its stacks.",
                              policy=document, tags=tags, opts=pulumi.ResourceOptions(parent=self))
