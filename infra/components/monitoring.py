"""The platform's metrics stack: Prometheus, Alertmanager and Grafana (kube-prometheus-stack), with the
platform's alert rules and dashboards, in the `monitoring` namespace.

`monitoring` enforces the `restricted` Pod Security profile like every namespace Pulumi creates: every
pod of the chart there (operator, Prometheus, Alertmanager, Grafana, kube-state-metrics, the webhook
certificate jobs) runs non-root with no capabilities. node-exporter needs the host's network, PID
namespace and root filesystem, so it runs in kube-system with the other node agents.

The monitoring.coreos.com CRDs come from their own release (prometheus-operator-crds), installed before the
stack: kube-prometheus-stack's own copies sit in its `crds/` directory, which Helm installs once and never
upgrades, so a chart bump would leave old CRDs behind a newer operator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from infra.components.admission_policies import TEAM_LABEL
from infra.components.gpu_node_pool import ACCELERATOR_LABEL, CAPACITY_LABEL, DEDICATED_KEY, GPU_TYPE_LABEL, POOL_LABEL
from infra.components.pod_security import restricted_pod_security_context
from infra.components.team_workspace import MONITORING_NAMESPACE, namespace_labels
from infra.config.observability import MetricsConfig
from infra.helm import release_args
from infra.observability.dashboards import DASHBOARD_LABEL, DASHBOARD_LABEL_VALUE, dashboard_config_maps
from infra.observability.rules import prometheus_rule_specs
from infra.versions import KUBE_PROMETHEUS_STACK, PROMETHEUS_OPERATOR_CRDS

RELEASE_NAME = "kube-prometheus-stack"
CRDS_RELEASE_NAME = "prometheus-operator-crds"
# Helm leaves an object with this annotation in place on uninstall: removing the CRD release must never delete
# the CRDs, which would delete every Prometheus, PrometheusRule, ServiceMonitor and PodMonitor of the cluster.
# https://helm.sh/docs/howto/charts_tips_and_tricks/#tell-helm-not-to-uninstall-a-resource
KEEP_ON_UNINSTALL = {"helm.sh/resource-policy": "keep"}
# Privileged node agents live beside the device plugin, outside the restricted namespace.
NODE_AGENT_NAMESPACE = "kube-system"
GRAFANA_ADMIN_SECRET = "grafana-admin"
GRAFANA_ADMIN_USER = "admin"
ADMIN_USER_KEY, ADMIN_PASSWORD_KEY = "admin-user", "admin-password"
# Grafana signs sessions and encrypts data-source secrets with it; its built-in default is public.
SECRET_KEY_KEY = "secret-key"
ALERTMANAGER_STORAGE_GIB = 10
# Prometheus deletes the oldest blocks past this share of its volume, so a burst of series never fills it.
RETENTION_SIZE_PERCENT = 85
# Node labels kube-state-metrics exports on kube_node_labels (e.g. label_ai_platform_io_gpu_pool).
NODE_LABELS = (POOL_LABEL, GPU_TYPE_LABEL, ACCELERATOR_LABEL, CAPACITY_LABEL, DEDICATED_KEY)
NAMESPACE_LABELS = (TEAM_LABEL,)
# Control-plane components EKS runs out of reach of in-cluster scrapes (kube-proxy listens on loopback):
# their ServiceMonitors would only ever find dead targets and their `absent()` alerts would always fire.
EKS_MANAGED_COMPONENTS = ("kubeControllerManager", "kubeScheduler", "kubeEtcd", "kubeProxy")
RESTRICTED_POD = restricted_pod_security_context(1000, group=2000, fs_group=2000)


def retention(config: MetricsConfig) -> str:
    """Prometheus's time retention (`--storage.tsdb.retention.time`)."""
    return f"{config.retention_days}d"


def retention_size(config: MetricsConfig) -> str:
    """Prometheus's size retention; Prometheus's GB are powers of two, like the volume's GiB."""
    return f"{config.storage_gib * RETENTION_SIZE_PERCENT // 100}GB"


def volume_claim_template(storage_class: str, gib: int) -> dict[str, Any]:
    """A ReadWriteOnce claim on the platform's encrypted class (gp3, the platform's KMS key)."""
    return {"spec": {"storageClassName": storage_class, "accessModes": ["ReadWriteOnce"],
                     "resources": {"requests": {"storage": f"{gib}Gi"}}}}


def alertmanager_config() -> dict[str, Any]:
    """The route tree: alerts are grouped per alert, team and namespace, and routed by their `team` label.

    `team="platform"` alerts (GPUs, node pools, logging, Prometheus itself) go to `platform`; anything
    else, the chart's Kubernetes alerts included, to `default`. Neither receiver notifies anyone yet:
    give one a `slack_configs`/`pagerduty_configs`/`webhook_configs` entry whose credential is read from
    a file (`api_url_file`, `routing_key_file`, `url_file`) mounted from a Secret listed in
    `alertmanager.alertmanagerSpec.secrets`, so no credential lands in the release's values. A team gets
    its own receiver by a route matching `team="<team>"` placed before the default.
    https://prometheus.io/docs/alerting/latest/configuration/
    """
    return {
        "global": {"resolve_timeout": "5m"},
        "route": {
            "receiver": "default",
            "group_by": ["alertname", "team", "namespace"],
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "4h",
            "routes": [
                # The always-firing heartbeat: point it at an external dead man's switch to learn when
                # alerting itself is down.
                {"receiver": "null", "matchers": ['alertname = "Watchdog"']},
                {"receiver": "platform", "matchers": ['team = "platform"']},
            ],
        },
        # A critical alert silences the warning and info alerts of the same thing; InfoInhibitor (a chart
        # default rule) silences info alerts while nothing worse fires in a namespace.
        "inhibit_rules": [
            {"source_matchers": ['severity = "critical"'], "target_matchers": ['severity =~ "warning|info"'],
             "equal": ["alertname", "team", "namespace"]},
            {"source_matchers": ['severity = "warning"'], "target_matchers": ['severity = "info"'],
             "equal": ["alertname", "team", "namespace"]},
            {"source_matchers": ['alertname = "InfoInhibitor"'], "target_matchers": ['severity = "info"'],
             "equal": ["namespace"]},
            {"target_matchers": ['alertname = "InfoInhibitor"']},
        ],
        "receivers": [{"name": "default"}, {"name": "platform"}, {"name": "null"}],
        "templates": ["/etc/alertmanager/config/*.tmpl"],
    }


def grafana_secret_data(password: pulumi.Input[str], secret_key: pulumi.Input[str]) -> dict[str, pulumi.Input[str]]:
    """The Secret that grafana_values() points Grafana at: admin user and password, and its secret key."""
    return {ADMIN_USER_KEY: GRAFANA_ADMIN_USER, ADMIN_PASSWORD_KEY: password, SECRET_KEY_KEY: secret_key}


def grafana_values() -> dict[str, Any]:
    """Grafana: admin credentials from a Secret, no anonymous users, no sign-up, dashboards from ConfigMaps.

    The login form stays on: until an SSO provider (`auth.generic_oauth`, …) is configured it is the
    only way in, with the generated admin password. Basic auth stays on too: the dashboard sidecar
    reloads Grafana through its API with the same credentials.
    https://github.com/grafana-community/helm-charts/blob/grafana-12.11.1/charts/grafana/values.yaml
    """
    return {
        "admin": {"existingSecret": GRAFANA_ADMIN_SECRET, "userKey": ADMIN_USER_KEY, "passwordKey": ADMIN_PASSWORD_KEY},
        "envValueFrom": {"GF_SECURITY_SECRET_KEY": {"secretKeyRef": {"name": GRAFANA_ADMIN_SECRET,
                                                                     "key": SECRET_KEY_KEY}}},
        "grafana.ini": {
            "auth": {"disable_login_form": False},
            "auth.anonymous": {"enabled": False},
            "auth.basic": {"enabled": True},
            # Browsers keep secure cookies on https and on http://localhost (kubectl port-forward).
            "security": {"cookie_secure": True, "cookie_samesite": "strict", "disable_gravatar": True,
                         "content_security_policy": True},
            "users": {"allow_sign_up": False, "allow_org_create": False},
            "snapshots": {"external_enabled": False},
            "analytics": {"reporting_enabled": False, "check_for_updates": False,
                          "check_for_plugin_updates": False},
        },
        "sidecar": {"dashboards": {
            "enabled": True, "label": DASHBOARD_LABEL, "labelValue": DASHBOARD_LABEL_VALUE,
            # Only the platform's own ConfigMaps: no other namespace can inject a dashboard.
            # A string, the type of the stack's default ("ALL"); the chart would join a list into the same value.
            "searchNamespace": MONITORING_NAMESPACE, "resource": "configmap",
            "provider": {"allowUiUpdates": False},
        }},
        # A Role in `monitoring` instead of the chart's ClusterRole that reads every Secret of the cluster.
        "rbac": {"namespaced": True},
        # Dashboards and data sources are code; nothing needs a volume (and its root-owned chown job).
        "persistence": {"enabled": False},
        "initChownData": {"enabled": False},
        "testFramework": {"enabled": False},
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
    }


def prometheus_values(config: MetricsConfig, storage_class: str, cluster_name: str) -> dict[str, Any]:
    """Prometheus: every ServiceMonitor, PodMonitor, Probe, ScrapeConfig and PrometheusRule of the cluster.

    https://github.com/prometheus-community/helm-charts/blob/kube-prometheus-stack-88.5.3/charts/kube-prometheus-stack/values.yaml
    """
    return {
        "podDisruptionBudget": {"enabled": config.replicas > 1, "minAvailable": 1},
        "prometheusSpec": {
            "replicas": config.replicas,
            "retention": retention(config),
            "retentionSize": retention_size(config),
            "walCompression": True,
            # Without these the chart selects only objects labelled with its release name.
            "ruleSelectorNilUsesHelmValues": False,
            "serviceMonitorSelectorNilUsesHelmValues": False,
            "podMonitorSelectorNilUsesHelmValues": False,
            "probeSelectorNilUsesHelmValues": False,
            "scrapeConfigSelectorNilUsesHelmValues": False,
            "externalLabels": {"cluster": cluster_name},
            "storageSpec": {"volumeClaimTemplate": volume_claim_template(storage_class, config.storage_gib)},
            "resources": {"requests": {"cpu": "500m", "memory": "2Gi"}, "limits": {"memory": "4Gi"}},
            "securityContext": dict(RESTRICTED_POD),
            "podAntiAffinity": "soft",
            "podAntiAffinityTopologyKey": "topology.kubernetes.io/zone",
        },
    }


def alertmanager_values(config: MetricsConfig, storage_class: str) -> dict[str, Any]:
    return {
        "podDisruptionBudget": {"enabled": config.replicas > 1, "minAvailable": 1},
        "config": alertmanager_config(),
        "alertmanagerSpec": {
            "replicas": config.replicas,
            # Silences and the notification log survive restarts.
            "storage": {"volumeClaimTemplate": volume_claim_template(storage_class, ALERTMANAGER_STORAGE_GIB)},
            "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
            "securityContext": dict(RESTRICTED_POD),
            "podAntiAffinity": "soft",
            "podAntiAffinityTopologyKey": "topology.kubernetes.io/zone",
        },
    }


def crds_values() -> dict[str, Any]:
    """prometheus-operator-crds' values: every CRD of the operator (its default), kept on uninstall.

    The chart renders its CRDs as templates, so Helm upgrades them with the chart; `crds.annotations` lands
    on every one of them.
    https://github.com/prometheus-community/helm-charts/blob/prometheus-operator-crds-31.0.1/charts/prometheus-operator-crds/values.yaml
    """
    return {"crds": {"annotations": dict(KEEP_ON_UNINSTALL)}}


def metrics_stack_values(config: MetricsConfig, storage_class: str, cluster_name: str) -> dict[str, Any]:
    """kube-prometheus-stack's values. The chart's default rules and dashboards stay: they watch the
    cluster itself (nodes, kubelet, workloads, Prometheus); only the components EKS manages are off."""
    values: dict[str, Any] = {
        # The CRDs are the prometheus-operator-crds release's (crds_values()), which Helm does upgrade.
        "crds": {"enabled": False},
        "defaultRules": {"create": True},
        "prometheus": prometheus_values(config, storage_class, cluster_name),
        "alertmanager": alertmanager_values(config, storage_class),
        "grafana": grafana_values(),
        "prometheusOperator": {
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
        },
        "kube-state-metrics": {
            # kube_node_labels{label_ai_platform_io_gpu_pool=...}: joins node metrics to GPU pools.
            "metricLabelsAllowlist": [f"nodes=[{','.join(NODE_LABELS)}]",
                                      f"namespaces=[{','.join(NAMESPACE_LABELS)}]"],
            "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
        },
        "prometheus-node-exporter": {
            "namespaceOverride": NODE_AGENT_NAMESPACE,
            # Every node, GPU pools (nvidia.com/gpu, ai-platform.io/dedicated) included.
            "tolerations": [{"operator": "Exists", "effect": "NoSchedule"}],
            "priorityClassName": "system-node-critical",
            "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
        },
    }
    for component in EKS_MANAGED_COMPONENTS:
        values[component] = {"enabled": False}
    return values


@dataclass(frozen=True)
class MetricsStackArgs:
    """Args of :class:`MetricsStack`.

    Attributes:
        config: Retention, volume size and replicas of Prometheus and Alertmanager.
        cluster_name: The cluster's name, Prometheus's `cluster` external label.
        storage_class: The encrypted StorageClass of the volumes (BlockStorage.storage_class_name).
        provider: Kubernetes provider of the cluster.
        depends_on: What must exist first (the StorageClass's component).

    Whatever creates monitoring.coreos.com objects (PrometheusRules, ServiceMonitors, PodMonitors, charts
    that render them) depends on the MetricsStack itself: that waits for every child, the CRD release and
    the operator's admission webhook included.
    """

    config: MetricsConfig
    cluster_name: str
    storage_class: str
    provider: k8s.Provider
    depends_on: tuple[pulumi.Resource, ...] = ()


class MetricsStack(pulumi.ComponentResource):
    """kube-prometheus-stack as a pinned Helm release after the prometheus-operator CRDs' own release, Grafana's
    generated admin credentials, and the platform's PrometheusRules and dashboards.

    https://github.com/prometheus-community/helm-charts/tree/main/charts/kube-prometheus-stack
    """

    namespace: str
    release_name: pulumi.Output[str]
    crds_release_name: pulumi.Output[str]
    grafana_admin_secret: str

    def __init__(self, name: str, args: MetricsStackArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-platform:observability:MetricsStack", name, None, opts)
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=args.provider)
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace", metadata={"name": MONITORING_NAMESPACE,
                                           "labels": namespace_labels(MONITORING_NAMESPACE)}, opts=k8s_opts)
        in_namespace = pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(depends_on=[namespace]))
        # Letters and digits only: the sidecars send it in a basic-auth header; 32 of them are ~190 bits.
        password = random.RandomPassword(f"{name}-grafana-admin", length=32, special=False,
                                         opts=pulumi.ResourceOptions(parent=self))
        secret_key = random.RandomPassword(f"{name}-grafana-secret-key", length=32, special=False,
                                           opts=pulumi.ResourceOptions(parent=self))
        secret = k8s.core.v1.Secret(
            f"{name}-grafana-admin",
            metadata={"name": GRAFANA_ADMIN_SECRET, "namespace": MONITORING_NAMESPACE},
            type="Opaque",
            string_data=grafana_secret_data(password.result, secret_key.result),
            opts=in_namespace)
        crds = k8s.helm.v3.Release(
            f"{name}-crds",
            name=CRDS_RELEASE_NAME,
            # Only the release's record lives in the namespace; CRDs are cluster-scoped.
            namespace=MONITORING_NAMESPACE,
            values=crds_values(),
            atomic=True,
            # Adopts CRDs a kube-prometheus-stack install with `crds.enabled` created from its crds/ directory:
            # those carry no Helm ownership metadata, and without adoption the install fails on them.
            take_ownership=True,
            # No pods, no volumes: only the namespace that holds the release's record comes first.
            opts=in_namespace,
            **release_args(PROMETHEUS_OPERATOR_CRDS),
        )
        release = k8s.helm.v3.Release(
            f"{name}-release",
            name=RELEASE_NAME,
            namespace=MONITORING_NAMESPACE,
            values=metrics_stack_values(args.config, args.storage_class, args.cluster_name),
            atomic=True,
            # A component's depends_on does not reach its children; the release waits for them itself. The
            # operator needs its CRDs, at the version it was built for, before it starts.
            opts=pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(
                depends_on=[namespace, secret, crds, *args.depends_on])),
            **release_args(KUBE_PROMETHEUS_STACK),
        )
        # The CRDs come with their release, the operator's admission webhook with the stack's.
        after_release = pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(depends_on=[crds, release]))
        for rule, spec in prometheus_rule_specs().items():
            k8s.apiextensions.CustomResource(
                f"{name}-rule-{rule}", api_version="monitoring.coreos.com/v1", kind="PrometheusRule",
                metadata={"name": rule, "namespace": MONITORING_NAMESPACE}, spec=spec, opts=after_release)
        for dashboard, config_map in dashboard_config_maps().items():
            k8s.core.v1.ConfigMap(
                f"{name}-dashboard-{dashboard}",
                metadata={"name": dashboard, "namespace": MONITORING_NAMESPACE, "labels": config_map["labels"]},
                data=config_map["data"], opts=after_release)
        self.namespace = MONITORING_NAMESPACE
        self.release_name = release.name
        self.crds_release_name = crds.name
        self.grafana_admin_secret = GRAFANA_ADMIN_SECRET
        self.register_outputs({"namespace": self.namespace, "release_name": self.release_name,
                               "crds_release_name": self.crds_release_name,
                               "grafana_admin_secret": self.grafana_admin_secret})
