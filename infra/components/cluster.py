"""The EKS control plane, its OIDC provider, the node role, the system node group and a provider for it."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra.aws_context import AwsContext
from infra.components.irsa_role import irsa_role
from infra.components.node_launch_template import node_launch_template
from infra.config import ClusterConfig
from infra.iam_policies import managed_policy_arn, service_trust_policy
from infra.kubeconfig import eks_kubeconfig
from infra.versions import COREDNS, KUBE_PROXY, VPC_CNI

CONTROL_PLANE_LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")
# The CNI's own policy goes to its IRSA role, not to every node (and so to every pod on it).
NODE_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryReadOnly")
CNI_NAMESPACE, CNI_SERVICE_ACCOUNT = "kube-system", "aws-node"


def vpc_cni_configuration() -> dict:
    """Turn on the CNI's network policy agent: without it NetworkPolicies are stored but not enforced.

    https://docs.aws.amazon.com/eks/latest/userguide/cni-network-policy-configure.html
    """
    return {"enableNetworkPolicy": "true"}
SYSTEM_NODE_LABELS = {"ai-platform.io/node-role": "system"}


@dataclass(frozen=True)
class NodeRole:
    """An IAM role for nodes with the policies every node has, and those policies' attachments."""

    role: aws.iam.Role
    attachments: tuple[aws.iam.RolePolicyAttachment, ...]

    def once_attached(self, value: pulumi.Output[str]) -> pulumi.Output[str]:
        """``value`` (the role's name or ARN), resolved only once every policy is attached."""
        return pulumi.Output.all(value, *[a.id for a in self.attachments]).apply(lambda v: v[0])


def node_role(name: str, partition: pulumi.Output[str], *, parent: pulumi.Resource) -> NodeRole:
    """A role EC2 instances assume as nodes: NODE_POLICIES attached (the CNI's policy stays with its IRSA role)."""
    child = pulumi.ResourceOptions(parent=parent)
    role = aws.iam.Role(name, assume_role_policy=json.dumps(service_trust_policy("ec2.amazonaws.com")), opts=child)
    attachments = tuple(
        aws.iam.RolePolicyAttachment(f"{name}-{policy}", role=role.name, opts=child,
                                     policy_arn=partition.apply(lambda p, policy=policy: managed_policy_arn(p, policy)))
        for policy in NODE_POLICIES)
    return NodeRole(role, attachments)


def vpc_config(cfg: ClusterConfig, subnet_ids: pulumi.Input[list[str]]) -> dict:
    """Endpoint access: always private; public only to an explicit allowlist.

    https://docs.aws.amazon.com/eks/latest/userguide/cluster-endpoint.html
    """
    config: dict = {"subnet_ids": subnet_ids, "endpoint_private_access": True,
                    "endpoint_public_access": cfg.endpoint_public_access}
    if cfg.endpoint_public_access:
        config["public_access_cidrs"] = list(cfg.public_access_cidrs)
    return config


@dataclass(frozen=True)
class ClusterArgs:
    """Args of :class:`Cluster`.

    Attributes:
        config: Cluster section of the stack config.
        cluster_name: EKS cluster name.
        subnet_ids: Private subnets for the control plane's interfaces and the nodes.
        secrets_key_arn: KMS key for envelope encryption of Kubernetes secrets.
        logs_key_arn: KMS key of the control-plane log group.
        volume_key_arn: KMS key of node root volumes.
        aws: Account, partition and region.
    """

    config: ClusterConfig
    cluster_name: str
    subnet_ids: pulumi.Input[list[str]]
    secrets_key_arn: pulumi.Input[str]
    logs_key_arn: pulumi.Input[str]
    volume_key_arn: pulumi.Input[str]
    aws: AwsContext


class Cluster(pulumi.ComponentResource):
    """An EKS cluster with private endpoint, encrypted secrets, audit logging and IRSA.

    https://docs.aws.amazon.com/eks/latest/userguide/clusters.html
    """

    name: pulumi.Output[str]
    endpoint: pulumi.Output[str]
    security_group_id: pulumi.Output[str]
    certificate_authority: pulumi.Output[str]
    oidc_provider_arn: pulumi.Output[str]
    oidc_issuer_url: pulumi.Output[str]
    node_role_arn: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    provider: k8s.Provider

    def __init__(self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-platform:cluster:Cluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        cfg, partition = args.config, args.aws.partition

        role = aws.iam.Role(f"{name}-control-plane", opts=child,
                            assume_role_policy=json.dumps(service_trust_policy("eks.amazonaws.com", tag_session=True)))
        attachment = aws.iam.RolePolicyAttachment(
            f"{name}-control-plane", role=role.name, opts=child,
            policy_arn=partition.apply(lambda p: managed_policy_arn(p, "AmazonEKSClusterPolicy")))
        # EKS writes to this group once it exists; creating it first lets us own retention and encryption.
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-control-plane-logs", name=f"/aws/eks/{args.cluster_name}/cluster",
            retention_in_days=cfg.log_retention_days, kms_key_id=args.logs_key_arn,
            # A fixed name: a replacement must delete the old group first or it collides with it.
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True))
        cluster = aws.eks.Cluster(
            f"{name}-eks",
            name=args.cluster_name,
            version=cfg.version,
            role_arn=role.arn,
            vpc_config=vpc_config(cfg, args.subnet_ids),
            encryption_config={"provider": {"key_arn": args.secrets_key_arn}, "resources": ["secrets"]},
            enabled_cluster_log_types=list(CONTROL_PLANE_LOG_TYPES),
            access_config={"authentication_mode": "API", "bootstrap_cluster_creator_admin_permissions": True},
            # Clusters created through the API default to EXTENDED, billed per hour once standard support ends.
            # STANDARD upgrades the control plane then instead: keep cluster.version within standard support.
            # https://docs.aws.amazon.com/eks/latest/userguide/view-upgrade-policy.html
            upgrade_policy={"support_type": "STANDARD"},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[attachment, log_group], delete_before_replace=True),
        )
        # Identified by what they allow, so a replacement must remove the old rule first (AWS rejects a duplicate).
        # Named by CIDR, so editing the list never turns one network's rule into another's.
        identity = pulumi.ResourceOptions(parent=self, delete_before_replace=True)
        for cidr in cfg.private_access_cidrs:
            # Deploys (and kubectl) reach the private endpoint only from these networks.
            aws.ec2.SecurityGroupRule(
                f"{name}-api-from-{cidr.replace('/', '-')}", type="ingress", protocol="tcp", from_port=443,
                to_port=443, cidr_blocks=[cidr], description="Kubernetes API from an allowed private network",
                security_group_id=cluster.vpc_config.cluster_security_group_id, opts=identity)
        issuer = cluster.identities.apply(lambda ids: ids[0]["oidcs"][0]["issuer"])
        oidc = aws.iam.OpenIdConnectProvider(f"{name}-oidc", url=issuer, client_id_lists=["sts.amazonaws.com"],
                                             opts=child)
        cni = self._vpc_cni(name, cluster, oidc, issuer, partition)
        # Every node group (GPU pools too) waits for the CNI through the role ARN it is given.
        node_role_arn = pulumi.Output.all(self._node_role(name, partition), cni.arn).apply(lambda v: v[0])
        system_nodes = self._system_nodes(name, args, cluster, node_role_arn, cni)
        self._core_addons(name, cluster, cfg.version, system_nodes)

        self.name = cluster.name
        self.endpoint = cluster.endpoint
        # The security group EKS creates for the control plane and every node it manages; Karpenter's nodes join it too.
        self.security_group_id = cluster.vpc_config.cluster_security_group_id
        self.certificate_authority = cluster.certificate_authority.apply(lambda ca: ca["data"])
        self.oidc_provider_arn = oidc.arn
        self.oidc_issuer_url = issuer
        self.node_role_arn = node_role_arn
        self.kubeconfig = pulumi.Output.all(cluster.name, cluster.endpoint, self.certificate_authority).apply(
            lambda v: json.dumps(eks_kubeconfig(v[0], v[1], v[2], args.aws.region)))
        # Everything deployed through this provider (Helm releases, namespaces, workloads) waits for schedulable
        # nodes: a release installed on a control plane without nodes sits Pending until its timeout.
        self.provider = k8s.Provider(f"{name}-k8s", kubeconfig=self.kubeconfig,
                                     opts=pulumi.ResourceOptions(parent=self, depends_on=[system_nodes]))
        self.register_outputs({
            "name": self.name, "endpoint": self.endpoint, "security_group_id": self.security_group_id,
            "certificate_authority": self.certificate_authority,
            "oidc_provider_arn": self.oidc_provider_arn, "oidc_issuer_url": self.oidc_issuer_url,
            "node_role_arn": self.node_role_arn, "kubeconfig": self.kubeconfig,
        })

    def _vpc_cni(self, name: str, cluster: aws.eks.Cluster, oidc: aws.iam.OpenIdConnectProvider,
                 issuer: pulumi.Output[str], partition: pulumi.Output[str]) -> aws.eks.Addon:
        role = irsa_role(f"{name}-vpc-cni", oidc_provider_arn=oidc.arn, oidc_issuer_url=issuer,
                         namespace=CNI_NAMESPACE, service_account=CNI_SERVICE_ACCOUNT, parent=self)
        attachment = aws.iam.RolePolicyAttachment(
            f"{name}-vpc-cni", role=role.name, opts=pulumi.ResourceOptions(parent=self),
            policy_arn=partition.apply(lambda p: managed_policy_arn(p, "AmazonEKS_CNI_Policy")))
        return aws.eks.Addon(
            f"{name}-vpc-cni", cluster_name=cluster.name, addon_name=VPC_CNI.name, addon_version=VPC_CNI.version,
            service_account_role_arn=role.arn, configuration_values=json.dumps(vpc_cni_configuration()),
            resolve_conflicts_on_create="OVERWRITE", resolve_conflicts_on_update="OVERWRITE",
            opts=pulumi.ResourceOptions(parent=self, depends_on=[attachment], delete_before_replace=True))

    def _node_role(self, name: str, partition: pulumi.Output[str]) -> pulumi.Output[str]:
        """The role of every node; its ARN resolves only once the policies are attached."""
        role = node_role(f"{name}-nodes", partition, parent=self)
        # Node groups created before their role has these policies never join the cluster.
        return role.once_attached(role.role.arn)

    def _system_nodes(self, name: str, args: ClusterArgs, cluster: aws.eks.Cluster,
                      node_role_arn: pulumi.Output[str], cni: aws.eks.Addon) -> aws.eks.NodeGroup:
        nodes = args.config.system_nodes
        template = node_launch_template(f"{name}-system", volume_gib=100, kms_key_arn=args.volume_key_arn,
                                        parent=self)
        return aws.eks.NodeGroup(
            f"{name}-system",
            cluster_name=cluster.name,
            node_role_arn=node_role_arn,
            subnet_ids=args.subnet_ids,
            ami_type="AL2023_x86_64_STANDARD",
            capacity_type="ON_DEMAND",
            instance_types=list(nodes.instance_types),
            scaling_config={"min_size": nodes.min_size, "max_size": nodes.max_size, "desired_size": nodes.desired},
            launch_template={"id": template.id, "version": template.latest_version.apply(str)},
            labels=SYSTEM_NODE_LABELS,
            update_config={"max_unavailable": 1},
            # Nodes need the CNI's role to get pod networking; the autoscaler owns the size afterwards.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[cni], ignore_changes=["scalingConfig.desiredSize"]),
        )

    def _core_addons(self, name: str, cluster: aws.eks.Cluster, version: str,
                     system_nodes: aws.eks.NodeGroup) -> list[aws.eks.Addon]:
        """kube-proxy and CoreDNS as managed add-ons, pinned to builds of the cluster's version.

        EKS installs self-managed copies of both when it creates a cluster; OVERWRITE takes them over.
        CoreDNS becomes active only once its pods run, so it waits for the system nodes.
        https://docs.aws.amazon.com/eks/latest/userguide/eks-add-ons.html
        """
        # An add-on is identified by its name in the cluster: a replacement must remove the old one first.
        child = pulumi.ResourceOptions(parent=self, delete_before_replace=True)
        after_nodes = pulumi.ResourceOptions(parent=self, depends_on=[system_nodes], delete_before_replace=True)
        return [
            aws.eks.Addon(f"{name}-{addon.name}", cluster_name=cluster.name, addon_name=addon.name,
                          addon_version=addon.version, resolve_conflicts_on_create="OVERWRITE",
                          resolve_conflicts_on_update="OVERWRITE", opts=opts)
            for addon, opts in ((KUBE_PROXY[version], child), (COREDNS[version], after_nodes))
        ]
