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

from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from infra.components.admission_policies import TEAM_LABEL
from infra.components.failover import disruption_min_available, zone_spread
from infra.components.gpu_node_pool import ACCELERATOR_LABEL, CAPACITY_LABEL, DEDICATED_KEY, GPU_TYPE_LABEL, POOL_LABEL
from infra.components.pod_security import restricted_pod_security_context
from infra.components.team_workspace import MONITORING_NAMESPACE, namespace_labels
from infra.config.alerts import (
    AlertRoute,
    AlertsConfig,
    PagerDutyReceiver,
    Receiver,
    SlackReceiver,
    WebhookReceiver,
    credentials,
)
from infra.config.observability import MetricsConfig
from infra.helm import release_args
from infra.observability.dashboards import DASHBOARD_LABEL, DASHBOARD_LABEL_VALUE, dashboard_config_maps
from infra.observability.rules import prometheus_rule_specs
from infra.versions import KUBE_PROMETHEUS_STACK, PROMETHEUS_OPERATOR_CRDS

RELEASE_NAME = "kube-prometheus-stack"
# The Prometheus Service the chart names `<fullname>-prometheus` (the fullname is the release's name, which holds
# the chart's) on `prometheus.service.port` (9090, the chart's default): what in-cluster readers such as KEDA query.
# https://github.com/prometheus-community/helm-charts/blob/kube-prometheus-stack-88.5.3/charts/kube-prometheus-stack/templates/prometheus/service.yaml
PROMETHEUS_SERVICE, PROMETHEUS_PORT = f"{RELEASE_NAME}-prometheus", 9090
# Plain HTTP inside the cluster: the chart serves Prometheus without TLS.
PROMETHEUS_URL = f"http://{PROMETHEUS_SERVICE}.{MONITORING_NAMESPACE}.svc.cluster.local:{PROMETHEUS_PORT}"
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
# Receivers' credentials: a Secret the operator mounts into Alertmanager at /etc/alertmanager/secrets/<name>/.
ALERTMANAGER_CREDENTIALS_SECRET = "alertmanager-credentials"
ALERTMANAGER_CREDENTIALS_DIR = f"/etc/alertmanager/secrets/{ALERTMANAGER_CREDENTIALS_SECRET}"
# Prometheus deletes the oldest blocks past this share of its volume, so a burst of series never fills it.
RETENTION_SIZE_PERCENT = 85
# Node labels kube-state-metrics exports on kube_node_labels (e.g. label_ai_platform_io_gpu_pool).
NODE_LABELS = (POOL_LABEL, GPU_TYPE_LABEL, ACCELERATOR_LABEL, CAPACITY_LABEL, DEDICATED_KEY)
NAMESPACE_LABELS = (TEAM_LABEL,)
# Control-plane components EKS runs out of reach of in-cluster scrapes (kube-proxy listens on loopback):
# their ServiceMonitors would only ever find dead targets and their `absent()` alerts would always fire.
EKS_MANAGED_COMPONENTS = ("kubeControllerManager", "kubeScheduler", "kubeEtcd", "kubeProxy")
RESTRICTED_POD = restricted_pod_security_context(1000, group=2000, fs_group=2000)
# Labels the operator puts on the pods of every Prometheus and Alertmanager (the monitoring namespace has one each).
PROMETHEUS_POD_LABELS = {"app.kubernetes.io/name": "prometheus"}
ALERTMANAGER_POD_LABELS = {"app.kubernetes.io/name": "alertmanager"}
# One Grafana: without persistence each replica would keep its own database (users, sessions, API keys), so
# a second one would log users out at random. Dashboards are code; a rescheduled Grafana loses nothing.
GRAFANA_REPLICAS = 1


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


def alertmanager_config(alerts: AlertsConfig | None = None,
                        credentials_dir: str = ALERTMANAGER_CREDENTIALS_DIR) -> dict[str, Any]:
    """The route tree: alerts are grouped per alert, team and namespace, and routed by the stack's
    `observability.alerts` (see infra/config/alerts.py): its routes by `team` and `severity`, first match
    wins, then its default receiver.

    Without a default receiver, the rest goes to `default`, which notifies no one. Receivers read their
    credentials from files under `credentials_dir` (`routing_key_file`, `api_url_file`, `auth_password_file`,
    `credentials_file`): in the cluster the Secret alertmanager_credentials() fills, mounted through
    `alertmanager.alertmanagerSpec.secrets`, so no credential lands in the release's values. `aip serve
    --with-prometheus` renders its local alertmanager.yml with this same function.
    https://prometheus.io/docs/alerting/latest/configuration/
    """
    alerts = alerts or AlertsConfig()
    default = alerts.default_receiver or "default"
    routes = [{"receiver": route.receiver, "matchers": _route_matchers(route),
               **({"continue": True} if route.continue_ else {})} for route in alerts.routes]
    receivers = [_receiver(receiver, credentials_dir) for receiver in alerts.receivers]
    if alerts.default_receiver is None:
        receivers.append({"name": "default"})
    return {
        "global": {"resolve_timeout": "5m"},
        "route": {
            "receiver": default,
            "group_by": ["alertname", "team", "namespace"],
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "4h",
            "routes": [
                # The always-firing heartbeat: point it at an external dead man's switch to learn when
                # alerting itself is down.
                {"receiver": "null", "matchers": ['alertname = "Watchdog"']},
                *routes,
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
        "receivers": [*receivers, {"name": "null"}],
        "templates": ["/etc/alertmanager/config/*.tmpl"],
    }


def _route_matchers(route: AlertRoute) -> list[str]:
    found = {"team": route.team, "severity": route.severity}
    return [f'{label} = "{value}"' for label, value in found.items() if value is not None]


def credential_file_key(receiver: str, field: str) -> str:
    """The Secret key (and file name) of one receiver's credential: `<receiver>-<field>`."""
    return f"{receiver}-{field}"


def _receiver(receiver: Receiver, credentials_dir: str) -> dict[str, Any]:
    def file(field: str) -> str:
        return f"{credentials_dir}/{credential_file_key(receiver.name, field)}"

    common = {"send_resolved": receiver.send_resolved}
    if isinstance(receiver, WebhookReceiver):
        config: dict[str, Any] = {**common, "url": receiver.url}
        if receiver.bearer_token is not None:
            config["http_config"] = {"authorization": {"type": "Bearer", "credentials_file": file("bearerToken")}}
        return {"name": receiver.name, "webhook_configs": [config]}
    if isinstance(receiver, SlackReceiver):
        config = {**common, "api_url_file": file("apiUrl"),
                  "title": "{{ .CommonLabels.alertname }} ({{ .CommonLabels.severity }}, "
                           "team {{ .CommonLabels.team }})",
                  "text": "{{ range .Alerts }}{{ .Annotations.summary }}\n{{ .Annotations.description }}\n"
                          "Runbook: {{ .Annotations.runbook }}\n{{ end }}"}
        if receiver.channel is not None:
            config["channel"] = receiver.channel
        return {"name": receiver.name, "slack_configs": [config]}
    if isinstance(receiver, PagerDutyReceiver):
        return {"name": receiver.name, "pagerduty_configs": [
            {**common, "routing_key_file": file("routingKey"), "severity": '{{ .CommonLabels.severity }}'}]}
    config = {**common, "to": receiver.to, "from": receiver.from_, "smarthost": receiver.smarthost,
              "require_tls": True}
    if receiver.auth_username is not None:
        config.update({"auth_username": receiver.auth_username, "auth_password_file": file("authPassword")})
    return {"name": receiver.name, "email_configs": [config]}


def alertmanager_credentials(alerts: AlertsConfig) -> dict[str, str]:
    """The Secret's data: every credential of every receiver, under the key its `*_file` field reads."""
    return {credential_file_key(alerts.receivers[index].name, field): value
            for (index, field), value in credentials(alerts).items()}


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
        # A single replica gets no disruption budget (it would block node drains) and no zone spread.
        "replicas": GRAFANA_REPLICAS,
    }


def prometheus_values(config: MetricsConfig, storage_class: str, cluster_name: str) -> dict[str, Any]:
    """Prometheus: every ServiceMonitor, PodMonitor, Probe, ScrapeConfig and PrometheusRule of the cluster.

    https://github.com/prometheus-community/helm-charts/blob/kube-prometheus-stack-88.5.3/charts/kube-prometheus-stack/values.yaml
    """
    return {
        "podDisruptionBudget": _disruption_budget(config.replicas),
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
            "topologySpreadConstraints": zone_spread(PROMETHEUS_POD_LABELS, config.replicas),
        },
    }


def _disruption_budget(replicas: int) -> dict[str, Any]:
    """The chart's `podDisruptionBudget` block: on with `minAvailable: 1` only for several replicas."""
    min_available = disruption_min_available(replicas)
    return {"enabled": min_available is not None, "minAvailable": min_available or 1}


def alertmanager_values(config: MetricsConfig, storage_class: str) -> dict[str, Any]:
    return {
        "podDisruptionBudget": _disruption_budget(config.replicas),
        "config": alertmanager_config(),
        "alertmanagerSpec": {
            "replicas": config.replicas,
            # Silences and the notification log survive restarts.
            "storage": {"volumeClaimTemplate": volume_claim_template(storage_class, ALERTMANAGER_STORAGE_GIB)},
            "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
            "securityContext": dict(RESTRICTED_POD),
            "podAntiAffinity": "soft",
            "podAntiAffinityTopologyKey": "topology.kubernetes.io/zone",
            "topologySpreadConstraints": zone_spread(ALERTMANAGER_POD_LABELS, config.replicas),
        },
    }


def crds_values() -> dict[str, Any]:
    """prometheus-operator-crds' values: every CRD of the operator (its default), kept on uninstall.

    The chart renders its CRDs as templates, so Helm upgrades them with the chart; `crds.annotations` lands
    on every one of them.
    https://github.com/prometheus-community/helm-charts/blob/prometheus-operator-crds-31.0.1/charts/prometheus-operator-crds/values.yaml
    """
    return {"crds": {"annotations": dict(KEEP_ON_UNINSTALL)}}


def metrics_stack_values(config: MetricsConfig, storage_class: str, cluster_name: str,
                         alerts: AlertsConfig | None = None) -> dict[str, Any]:
    """kube-prometheus-stack's values. The chart's default rules and dashboards stay: they watch the
    cluster itself (nodes, kubelet, workloads, Prometheus); only the components EKS manages are off.
    `alerts` routes notifications (alertmanager_routing())."""
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
    alertmanager_routing(values["alertmanager"], alerts or AlertsConfig())
    return values


def alertmanager_routing(values: dict[str, Any], alerts: AlertsConfig) -> None:
    """Set the chart's `alertmanager` values' routing: the config with the stack's receivers and routes, and
    the credentials Secret (when there is a credential) among the Secrets mounted into Alertmanager."""
    values["config"] = alertmanager_config(alerts)
    if alertmanager_credentials(alerts):
        spec = values.setdefault("alertmanagerSpec", {})
        spec["secrets"] = [*spec.get("secrets", []), ALERTMANAGER_CREDENTIALS_SECRET]


@dataclass(frozen=True)
class MetricsStackArgs:
    """Args of :class:`MetricsStack`.

    Attributes:
        config: Retention, volume size and replicas of Prometheus and Alertmanager.
        alerts: Alertmanager's receivers and routes; their credentials go into a Secret of their own.
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
    alerts: AlertsConfig = field(default_factory=AlertsConfig)


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
        routing_secrets = self._alert_credentials(name, args.alerts, in_namespace)
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
            values=metrics_stack_values(args.config, args.storage_class, args.cluster_name, args.alerts),
            atomic=True,
            # A component's depends_on does not reach its children; the release waits for them itself. The
            # operator needs its CRDs, at the version it was built for, before it starts.
            opts=pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(
                depends_on=[namespace, secret, *routing_secrets, crds, *args.depends_on])),
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

    def _alert_credentials(self, name: str, alerts: AlertsConfig,
                           opts: pulumi.ResourceOptions) -> list[k8s.core.v1.Secret]:
        # Wrapped as secrets again: config values lose their secret mark once parsed into plain models, and the
        # state must keep them encrypted.
        data = alertmanager_credentials(alerts)
        if not data:
            return []
        return [k8s.core.v1.Secret(
            f"{name}-alertmanager-credentials",
            metadata={"name": ALERTMANAGER_CREDENTIALS_SECRET, "namespace": MONITORING_NAMESPACE},
            type="Opaque", string_data={key: pulumi.Output.secret(value) for key, value in data.items()},
            opts=opts)]
