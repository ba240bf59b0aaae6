"""The platform's logs: Elasticsearch, Kibana and Filebeat run by the ECK operator, retention and nightly
snapshots to the S3 log archive, and an exporter that lets Prometheus watch the cluster.

`elastic-system` and `logging` enforce the `restricted` Pod Security profile like every namespace Pulumi
creates: the operator, Elasticsearch, Kibana, the exporter and the setup Job run non-root with no
capabilities. Elasticsearch needs no privileged sysctl init container: `node.store.allow_mmap: false`
keeps it off `vm.max_map_count`. Filebeat reads every node's container log files, which needs hostPath
mounts and root (the files are root-owned, mode 0640), so it runs in kube-system with the other node
agents: as uid 0 but with every capability dropped, a read-only root filesystem and read-only log mounts.
Both namespaces deny all traffic by default and allow only the flows the stack needs (logging_network.py).
https://www.elastic.co/docs/deploy-manage/deploy/cloud-on-k8s
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from infra.components.log_retention import (
    ILM_POLICY,
    MONITOR_ROLE,
    SETUP_ROLE,
    SNAPSHOT_BASE_PATH,
    content_hash,
    roles_file,
    setup_bodies,
    setup_job_spec,
    setup_script,
)
from infra.components.logging_network import LoggingWorkloads, logging_network_policies
from infra.components.pod_security import restricted_pod_security_context, restricted_security_context
from infra.components.team_workspace import namespace_labels
from infra.config.observability import LogsConfig
from infra.helm import release_args
from infra.versions import CURL, ECK_OPERATOR, ELASTIC_STACK_VERSION, ELASTICSEARCH_EXPORTER

ECK_NAMESPACE = "elastic-system"
LOGGING_NAMESPACE = "logging"
# Privileged node agents live beside the device plugin and node-exporter, outside the restricted namespaces.
FILEBEAT_NAMESPACE = "kube-system"
CLUSTER = "aip-logs"
NODE_SET = "default"
FILEBEAT = "filebeat"
OPERATOR_RELEASE, EXPORTER_RELEASE = "elastic-operator", "elasticsearch-exporter"
ELASTICSEARCH_SERVICE_ACCOUNT = "aip-logs-elasticsearch"
FILEBEAT_SERVICE_ACCOUNT = "aip-filebeat"
# ECK's names for the cluster's HTTPS service and the public half of its self-signed CA.
ELASTICSEARCH_URL = f"https://{CLUSTER}-es-http.{LOGGING_NAMESPACE}.svc:9200"
CA_SECRET = f"{CLUSTER}-es-http-certs-public"
ZONE_KEY = "topology.kubernetes.io/zone"
# The S3 repository reads the web identity token here and nowhere else (its entitlements end at its
# config directory), so the projected token is mounted there instead of IRSA's default path.
# https://www.elastic.co/docs/deploy-manage/tools/snapshot-and-restore/cloud-on-k8s#k8s-iam-service-accounts
TOKEN_DIR = "/usr/share/elasticsearch/config/repository-s3"
TOKEN_FILE = "aws-web-identity-token-file"
# The EKS pod identity webhook adds no second token volume when one has this name, and keeps a container's
# own AWS_ROLE_ARN / AWS_WEB_IDENTITY_TOKEN_FILE (it mounts this volume into ECK's init containers only).
TOKEN_VOLUME = "aws-iam-token"
ELASTICSEARCH_UID = 1000


class FileRealmUser(NamedTuple):
    """A user of the platform's own clients: the basic-auth Secret that holds it, its name and its role."""

    secret: str
    username: str
    role: str


SETUP_USER = FileRealmUser("aip-logs-setup-user", "aip_log_setup", SETUP_ROLE)
EXPORTER_USER = FileRealmUser("aip-logs-exporter-user", "aip_log_exporter", MONITOR_ROLE)
ROLES_SECRET = "aip-logs-roles"
# What the NetworkPolicies select; the setup Job's pod labels are set in log_retention.setup_job_spec().
WORKLOADS = LoggingWorkloads(
    operator_namespace=ECK_NAMESPACE, logging_namespace=LOGGING_NAMESPACE, filebeat_namespace=FILEBEAT_NAMESPACE,
    elasticsearch=CLUSTER, kibana=CLUSTER, beat=FILEBEAT, operator_release=OPERATOR_RELEASE,
    exporter_release=EXPORTER_RELEASE, exporter_chart=ELASTICSEARCH_EXPORTER.chart,
    setup_pod_labels=(("app.kubernetes.io/name", "aip-log-setup"),))
# Fields the model servers log (model-handlers/_runtime/aip_serving/logs.py) that Filebeat's ECS template
# does not know, typed so that latency and batch sizes can be aggregated and compared.
MODEL_SERVER_FIELDS = (("aip.model.name", "keyword"), ("aip.model.version", "keyword"), ("aip.runtime", "keyword"),
                       ("aip.latency_ms", "float"), ("aip.batch.instances", "long"), ("aip.batch.requests", "long"))


def restricted_pod(uid: int) -> dict[str, Any]:
    """Pod-level security context for ECK pods: what Pod Security `restricted` demands, plus the fsGroup
    ECK would set itself (setting any pod context replaces ECK's default one)."""
    return restricted_pod_security_context(uid, fs_group=uid)


def eck_operator_values() -> dict[str, Any]:
    """The operator with its CRDs, non-root, watching only the namespaces that hold Elastic resources.

    Watching is not RBAC: the chart still binds the operator's ClusterRole cluster-wide.

    https://github.com/elastic/cloud-on-k8s/blob/v3.5.0/deploy/eck-operator/values.yaml
    """
    return {
        "installCRDs": True,
        "managedNamespaces": [LOGGING_NAMESPACE, FILEBEAT_NAMESPACE],
        # A number, the type of upstream's default (`cpu: 1`).
        "resources": {"requests": {"cpu": "100m", "memory": "150Mi"}, "limits": {"cpu": 1, "memory": "1Gi"}},
        "podSecurityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "securityContext": {**restricted_security_context(), "readOnlyRootFilesystem": True},
        "telemetry": {"disabled": True},
    }


def elasticsearch_resources(memory_gib: int) -> dict[str, Any]:
    """Requests equal limits (Guaranteed QoS); a CPU for every 4 GiB. The JVM heap defaults to half."""
    amounts = {"cpu": str(max(1, memory_gib // 4)), "memory": f"{memory_gib}Gi"}
    return {"requests": amounts, "limits": dict(amounts)}


def index_replicas(nodes: int) -> int:
    """One replica of every shard when there is another node to hold it; none on a single node (dev)."""
    return 0 if nodes == 1 else 1


def claim_delete_policy(archive_deletion_protection: str) -> str:
    """Keep the data volumes when the Elasticsearch resource goes, wherever the archive is kept too."""
    return "DeleteOnScaledownAndClusterDeletion" if archive_deletion_protection == "none" else "DeleteOnScaledownOnly"


def zone_spread(labels: dict[str, str], *, when_unsatisfiable: str = "DoNotSchedule") -> list[dict[str, Any]]:
    return [{"maxSkew": 1, "topologyKey": ZONE_KEY, "whenUnsatisfiable": when_unsatisfiable,
             "labelSelector": {"matchLabels": labels}}]


def elasticsearch_spec(config: LogsConfig, *, storage_class: str, role_arn: Any, region: str) -> dict[str, Any]:
    """One node set of ``config.elasticsearch_nodes`` nodes, a zone each, on encrypted volumes, TLS on.

    ECK's zone awareness also tells Elasticsearch each node's zone, so a shard and its replica never
    share one. The pods run as the archive's IRSA service account with the token where the S3
    repository reads it.
    https://www.elastic.co/docs/deploy-manage/deploy/cloud-on-k8s/advanced-elasticsearch-node-scheduling
    """
    container = {
        "name": "elasticsearch",
        "resources": elasticsearch_resources(config.memory_gib),
        "securityContext": {**restricted_security_context(), "readOnlyRootFilesystem": True},
        "env": [{"name": "AWS_ROLE_ARN", "value": role_arn},
                {"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": f"{TOKEN_DIR}/{TOKEN_FILE}"},
                {"name": "AWS_REGION", "value": region},
                {"name": "AWS_STS_REGIONAL_ENDPOINTS", "value": "regional"}],
        "volumeMounts": [{"name": TOKEN_VOLUME, "mountPath": TOKEN_DIR, "readOnly": True}],
    }
    token = {"serviceAccountToken": {"audience": "sts.amazonaws.com", "expirationSeconds": 86400, "path": TOKEN_FILE}}
    return {
        "version": ELASTIC_STACK_VERSION,
        # Explicitly on: the cluster's HTTP layer serves only TLS, with ECK's self-signed CA.
        "http": {"tls": {"selfSignedCertificate": {"disabled": False}}},
        "auth": {"fileRealm": [{"secretName": SETUP_USER.secret}, {"secretName": EXPORTER_USER.secret}],
                 "roles": [{"secretName": ROLES_SECRET}]},
        "volumeClaimDeletePolicy": claim_delete_policy(config.archive_deletion_protection),
        # No podDisruptionBudget: ECK's default one allows an eviction only while the cluster is green, so a
        # drain never takes a second node while the first one's shards are still recovering.
        "nodeSets": [{
            "name": NODE_SET,
            "count": config.elasticsearch_nodes,
            "config": {"node.store.allow_mmap": False},
            "zoneAwareness": {"topologyKey": ZONE_KEY},
            "podTemplate": {"spec": {
                "serviceAccountName": ELASTICSEARCH_SERVICE_ACCOUNT,
                "automountServiceAccountToken": False,
                "securityContext": restricted_pod(ELASTICSEARCH_UID),
                "topologySpreadConstraints": zone_spread({
                    "elasticsearch.k8s.elastic.co/cluster-name": CLUSTER,
                    "elasticsearch.k8s.elastic.co/statefulset-name": f"{CLUSTER}-es-{NODE_SET}"}),
                "containers": [container],
                "volumes": [{"name": TOKEN_VOLUME, "projected": {"sources": [token]}}],
            }},
            "volumeClaimTemplates": [{
                "metadata": {"name": "elasticsearch-data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": storage_class,
                         "resources": {"requests": {"storage": f"{config.storage_gib}Gi"}}},
            }],
        }],
    }


def kibana_spec(nodes: int) -> dict[str, Any]:
    """Kibana on the cluster, TLS on; a second instance in another zone when the cluster has several nodes."""
    return {
        "version": ELASTIC_STACK_VERSION,
        "count": 1 if nodes == 1 else 2,
        "elasticsearchRef": {"name": CLUSTER},
        "http": {"tls": {"selfSignedCertificate": {"disabled": False}}},
        "podTemplate": {"spec": {
            "automountServiceAccountToken": False,
            "securityContext": restricted_pod(ELASTICSEARCH_UID),
            "topologySpreadConstraints": zone_spread({"kibana.k8s.elastic.co/name": CLUSTER},
                                                     when_unsatisfiable="ScheduleAnyway"),
            "containers": [{"name": "kibana", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"},
                                                            "limits": {"cpu": "1", "memory": "1Gi"}}}],
        }},
    }


def filebeat_config(nodes: int, ilm_policy: str) -> dict[str, Any]:
    """Every container's log lines with their pod's metadata; the model servers' ECS JSON as fields.

    Only lines that carry `ecs.version` are decoded into the event: arbitrary JSON from other containers
    would clash with the ECS mapping (a `log` string against the `log` object) and be rejected, so it
    stays searchable as `message` text instead.
    https://www.elastic.co/docs/reference/beats/filebeat/filebeat-input-filestream
    """
    return {
        "filebeat.inputs": [{
            "type": "filestream",
            "id": "kubernetes-container-logs",
            "paths": ["/var/log/containers/*.log"],
            # /var/log/containers holds symlinks into /var/log/pods.
            "prospector.scanner.symlinks": True,
            # Filebeat 9 identifies files by a fingerprint of their first bytes (1024 by default) and skips
            # smaller files: a pod that logs one line before it dies would never be shipped. 64 is the minimum.
            "prospector.scanner.fingerprint.length": 64,
            "parsers": [{"container": {"stream": "all", "format": "auto"}}],
            "processors": [
                {"add_kubernetes_metadata": {
                    "node": "${NODE_NAME}",
                    "use_kubeadm": False,
                    "matchers": [{"logs_path": {"logs_path": "/var/log/containers/"}}],
                }},
                {"decode_json_fields": {
                    "fields": ["message"], "target": "", "overwrite_keys": True, "expand_keys": True,
                    "add_error_key": True, "when": {"contains": {"message": '"ecs.version"'}},
                }},
            ],
        }],
        "setup.ilm.enabled": True,
        # The setup Job owns the policy; Filebeat only names it in its index template and never overwrites it.
        "setup.ilm.policy_name": ilm_policy,
        "setup.ilm.overwrite": False,
        "setup.template.settings": {"index.number_of_shards": 1, "index.number_of_replicas": index_replicas(nodes)},
        "setup.template.append_fields": [{"name": name, "type": kind} for name, kind in MODEL_SERVER_FIELDS],
    }


def filebeat_spec(nodes: int, ilm_policy: str) -> dict[str, Any]:
    """Filebeat on every node, GPU pools and dedicated pools included: it tolerates every taint."""
    # /var/log/containers holds symlinks into /var/log/pods, so both are mounted (read-only).
    host_logs = {"varlogcontainers": "/var/log/containers", "varlogpods": "/var/log/pods"}
    return {
        "type": "filebeat",
        "version": ELASTIC_STACK_VERSION,
        "elasticsearchRef": {"name": CLUSTER, "namespace": LOGGING_NAMESPACE},
        "config": filebeat_config(nodes, ilm_policy),
        "daemonSet": {"podTemplate": {"spec": {
            "serviceAccountName": FILEBEAT_SERVICE_ACCOUNT,
            "automountServiceAccountToken": True,
            "priorityClassName": "system-node-critical",
            "tolerations": [{"operator": "Exists"}],
            "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "filebeat",
                "env": [{"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
                "resources": {"requests": {"cpu": "100m", "memory": "256Mi"},
                              "limits": {"cpu": "1", "memory": "512Mi"}},
                # Root only to read root-owned log files; no capability, so no other file is readable.
                "securityContext": {"runAsUser": 0, "privileged": False, "allowPrivilegeEscalation": False,
                                    "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}},
                "volumeMounts": [{"name": volume, "mountPath": path, "readOnly": True}
                                 for volume, path in host_logs.items()],
            }],
            "volumes": [{"name": volume, "hostPath": {"path": path, "type": "Directory"}}
                        for volume, path in host_logs.items()],
        }}},
    }


def filebeat_rules() -> list[dict[str, Any]]:
    """What add_kubernetes_metadata reads: pods, their namespaces and nodes. Nothing is written."""
    return [{"apiGroups": [""], "resources": ["pods", "namespaces", "nodes"], "verbs": ["get", "list", "watch"]}]


def exporter_values(credentials_secret: str) -> dict[str, Any]:
    """The Elasticsearch exporter over TLS (trusting ECK's CA) as a monitor-only file-realm user.

    Collectors that need more than `monitor` (mappings, snapshots, SLM) stay off.
    https://github.com/prometheus-community/helm-charts/blob/prometheus-elasticsearch-exporter-7.4.0/charts/prometheus-elasticsearch-exporter/values.yaml
    """
    return {
        "es": {
            "uri": ELASTICSEARCH_URL,
            "all": True, "indices": True, "indices_settings": True, "indices_mappings": False, "shards": True,
            "snapshots": False, "slm": False, "ilm": False, "data_stream": False, "cluster_settings": False,
            "sslSkipVerify": False,
            "ssl": {"enabled": True, "useExistingSecrets": True, "ca": {"path": "/ssl/ca.crt"},
                    "client": {"enabled": False}},
        },
        "secretMounts": [{"name": "elasticsearch-ca", "secretName": CA_SECRET, "path": "/ssl"}],
        "extraEnvSecrets": {"ES_USERNAME": {"secret": credentials_secret, "key": "username"},
                            "ES_PASSWORD": {"secret": credentials_secret, "key": "password"}},
        "serviceAccount": {"create": True, "name": "aip-logs-exporter", "automountServiceAccountToken": False},
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "250m", "memory": "128Mi"}},
        # kube-prometheus-stack selects every ServiceMonitor of the cluster; the labels say whose it is.
        "serviceMonitor": {"enabled": True, "interval": "30s", "scrapeTimeout": "10s",
                           "labels": {"app.kubernetes.io/part-of": "ai-platform",
                                      "ai-platform.io/component": "logging"}},
    }


@dataclass(frozen=True)
class LoggingStackArgs:
    """Args of :class:`LoggingStack`.

    Attributes:
        config: Sizes, retention and snapshot schedule (`observability.logs`).
        storage_class: The encrypted StorageClass of the data volumes (BlockStorage.storage_class_name).
        archive_bucket: The S3 bucket snapshots go to (LogArchive.bucket).
        archive_role_arn: IAM role Elasticsearch writes snapshots with (LogArchive.role_arn).
        region: AWS region of the archive bucket.
        provider: Kubernetes provider of the cluster.
        depends_on: What must exist first (the StorageClass's component).
        monitoring: What installs the ServiceMonitor CRD the exporter's release uses (the metrics stack).
        snapshot_base_path: Where in the archive bucket this cluster's snapshots go.
        restore_repository: A recovery stack: also register the replicated snapshots of the restored stack (the
            default base path of the archive bucket, its replica) as a read-only repository to restore from.
    """

    config: LogsConfig
    storage_class: str
    archive_bucket: pulumi.Input[str]
    archive_role_arn: pulumi.Input[str]
    region: str
    provider: k8s.Provider
    depends_on: tuple[pulumi.Resource, ...] = ()
    monitoring: tuple[pulumi.Resource, ...] = ()
    snapshot_base_path: str = SNAPSHOT_BASE_PATH
    restore_repository: bool = False


class LoggingStack(pulumi.ComponentResource):
    """The ECK operator (pinned Helm release), Elasticsearch, Kibana, Filebeat, the retention and snapshot
    policies, the Elasticsearch exporter, and the NetworkPolicies of its two namespaces."""

    namespace: str
    elasticsearch_url: str

    def __init__(self, name: str, args: LoggingStackArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-platform:observability:LoggingStack", name, None, opts)
        self._name, self._k8s = name, pulumi.ResourceOptions(parent=self, provider=args.provider)
        cfg = args.config
        operator_ns = self._namespace("operator-namespace", ECK_NAMESPACE)
        logging_ns = self._namespace("namespace", LOGGING_NAMESPACE)
        # Every pod starts with its allows in place, so none sees the default deny alone.
        policies = self._network_policies({ECK_NAMESPACE: operator_ns, LOGGING_NAMESPACE: logging_ns})
        operator = k8s.helm.v3.Release(
            f"{name}-eck-operator", name=OPERATOR_RELEASE, namespace=ECK_NAMESPACE, values=eck_operator_values(),
            atomic=True, opts=self._after(operator_ns, *policies[ECK_NAMESPACE]), **release_args(ECK_OPERATOR))
        in_logging = self._after(logging_ns)
        setup_user, exporter_user = (self._user(user, in_logging) for user in (SETUP_USER, EXPORTER_USER))
        roles = k8s.core.v1.Secret(f"{name}-roles", metadata={"name": ROLES_SECRET, "namespace": LOGGING_NAMESPACE},
                                   type="Opaque", string_data={"roles.yml": roles_file()}, opts=in_logging)
        service_account = k8s.core.v1.ServiceAccount(
            f"{name}-elasticsearch-sa",
            metadata={"name": ELASTICSEARCH_SERVICE_ACCOUNT, "namespace": LOGGING_NAMESPACE,
                      "annotations": {"eks.amazonaws.com/role-arn": args.archive_role_arn}},
            # Elasticsearch never calls the Kubernetes API; its pods mount only the web identity token.
            automount_service_account_token=False, opts=in_logging)
        # The operator installs the CRDs and the webhook that validates these resources.
        crs = self._after(operator, logging_ns, setup_user, exporter_user, roles, service_account,
                          *policies[LOGGING_NAMESPACE],
                          *args.depends_on)
        elasticsearch = self._custom(
            "elasticsearch", "elasticsearch.k8s.elastic.co/v1", "Elasticsearch", (CLUSTER, LOGGING_NAMESPACE),
            elasticsearch_spec(cfg, storage_class=args.storage_class, role_arn=args.archive_role_arn,
                               region=args.region), crs)
        self._custom("kibana", "kibana.k8s.elastic.co/v1", "Kibana", (CLUSTER, LOGGING_NAMESPACE),
                     kibana_spec(cfg.elasticsearch_nodes), self._after(elasticsearch))
        filebeat_rbac = self._filebeat_rbac()
        self._custom("filebeat", "beat.k8s.elastic.co/v1beta1", "Beat", (FILEBEAT, FILEBEAT_NAMESPACE),
                     filebeat_spec(cfg.elasticsearch_nodes, ILM_POLICY), self._after(elasticsearch, *filebeat_rbac))
        self._setup_job(args, setup_user, elasticsearch)
        k8s.helm.v3.Release(
            f"{name}-exporter", name=EXPORTER_RELEASE, namespace=LOGGING_NAMESPACE,
            values=exporter_values(EXPORTER_USER.secret), atomic=True,
            opts=self._after(elasticsearch, exporter_user, *args.monitoring), **release_args(ELASTICSEARCH_EXPORTER))
        self.namespace = LOGGING_NAMESPACE
        self.elasticsearch_url = ELASTICSEARCH_URL
        self.register_outputs({"namespace": self.namespace, "elasticsearch_url": self.elasticsearch_url})

    def _after(self, *resources: pulumi.Resource) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions.merge(self._k8s, pulumi.ResourceOptions(depends_on=list(resources)))

    def _namespace(self, role: str, namespace: str) -> k8s.core.v1.Namespace:
        return k8s.core.v1.Namespace(f"{self._name}-{role}", metadata={
            "name": namespace, "labels": namespace_labels(namespace)}, opts=self._k8s)

    def _network_policies(self, namespaces: dict[str, k8s.core.v1.Namespace]) -> dict[str, list[pulumi.Resource]]:
        """Default deny and the stack's allows (logging_network), each namespace's after its namespace."""
        return {namespace: [k8s.networking.v1.NetworkPolicy(
            f"{self._name}-{namespace}-{policy}", metadata={"name": policy, "namespace": namespace}, spec=spec,
            opts=self._after(namespaces[namespace])) for policy, spec in policies.items()]
            for namespace, policies in logging_network_policies(WORKLOADS).items()}

    def _custom(self, role: str, api_version: str, kind: str, name_and_namespace: tuple[str, str],
                spec: dict[str, Any], opts: pulumi.ResourceOptions) -> k8s.apiextensions.CustomResource:
        name, namespace = name_and_namespace
        return k8s.apiextensions.CustomResource(f"{self._name}-{role}", api_version=api_version, kind=kind,
                                                metadata={"name": name, "namespace": namespace}, spec=spec,
                                                opts=opts)

    def _user(self, user: FileRealmUser, opts: pulumi.ResourceOptions) -> k8s.core.v1.Secret:
        """A file-realm user with a generated password (ECK hashes it into the realm)."""
        # Letters and digits only: it travels in basic-auth headers and curl's config; 40 of them are ~238 bits.
        password = random.RandomPassword(f"{self._name}-{user.secret}", length=40, special=False,
                                         opts=pulumi.ResourceOptions(parent=self))
        return k8s.core.v1.Secret(
            f"{self._name}-{user.secret}", metadata={"name": user.secret, "namespace": LOGGING_NAMESPACE},
            type="kubernetes.io/basic-auth",
            string_data={"username": user.username, "password": password.result, "roles": user.role}, opts=opts)

    def _filebeat_rbac(self) -> list[pulumi.Resource]:
        account = k8s.core.v1.ServiceAccount(
            f"{self._name}-filebeat-sa", metadata={"name": FILEBEAT_SERVICE_ACCOUNT, "namespace": FILEBEAT_NAMESPACE},
            opts=self._k8s)
        role = k8s.rbac.v1.ClusterRole(f"{self._name}-filebeat", metadata={"name": FILEBEAT_SERVICE_ACCOUNT},
                                       rules=filebeat_rules(), opts=self._k8s)
        binding = k8s.rbac.v1.ClusterRoleBinding(
            f"{self._name}-filebeat", metadata={"name": FILEBEAT_SERVICE_ACCOUNT},
            role_ref={"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": FILEBEAT_SERVICE_ACCOUNT},
            subjects=[{"kind": "ServiceAccount", "name": FILEBEAT_SERVICE_ACCOUNT, "namespace": FILEBEAT_NAMESPACE}],
            opts=self._after(role, account))
        return [account, role, binding]

    def _setup_job(self, args: LoggingStackArgs, user: k8s.core.v1.Secret, elasticsearch: pulumi.Resource) -> None:
        """The ConfigMap of API bodies and the Job that PUTs them, both named after a hash of their content."""
        cfg = args.config
        script = setup_script(ELASTICSEARCH_URL, restore=args.restore_repository)
        bodies = pulumi.Output.from_input(args.archive_bucket).apply(lambda b: setup_bodies(
            bucket=b, retention_days=cfg.retention_days, schedule=cfg.snapshot_schedule,
            snapshot_retention_days=cfg.snapshot_retention_days, base_path=args.snapshot_base_path,
            restore=args.restore_repository))
        suffix = bodies.apply(lambda data: content_hash(data, script, CURL.reference, SETUP_USER.secret))
        config_map = k8s.core.v1.ConfigMap(
            f"{self._name}-setup-bodies",
            metadata={"name": suffix.apply(lambda h: f"aip-log-setup-{h}"), "namespace": LOGGING_NAMESPACE},
            data=bodies, immutable=True, opts=self._after(elasticsearch))
        k8s.batch.v1.Job(
            f"{self._name}-setup",
            metadata={"name": suffix.apply(lambda h: f"aip-log-setup-{h}"), "namespace": LOGGING_NAMESPACE},
            spec=config_map.metadata.name.apply(lambda cm: setup_job_spec(
                config_map=cm, credentials_secret=SETUP_USER.secret, ca_secret=CA_SECRET, image=CURL.reference,
                script=script)),
            # Pulumi waits for the Job to succeed; a first install also waits for the cluster to come up.
            opts=pulumi.ResourceOptions.merge(self._after(elasticsearch, user, config_map), pulumi.ResourceOptions(
                custom_timeouts=pulumi.CustomTimeouts(create="35m", update="35m"))))
