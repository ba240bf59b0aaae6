"""The metrics stack, GPU metrics and the team scrape configuration: values, custom resources, previews."""

from __future__ import annotations

import json
import re
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pytest

from infra.components import gpu_metrics, monitoring, team_monitoring
from infra.components.block_storage import DEFAULT_STORAGE_CLASS
from infra.components.gpu_metrics import GpuMetrics, GpuMetricsArgs
from infra.components.gpu_node_pool import POOL_LABEL, gpu_labels, gpu_taints
from infra.components.inference_service import predictor_spec, scrape_annotations
from infra.components.kserve import torchserve_runtime_spec
from infra.components.monitoring import MetricsStack, MetricsStackArgs
from infra.components.team_monitoring import TeamMonitoring, TeamMonitoringArgs
from infra.components.team_workspace import MONITORING_NAMESPACE, network_policies
from infra.config import GpuPoolConfig
from infra.config.observability import ENVIRONMENT_DEFAULTS, MetricsConfig
from infra.config.serving import ModelDeployment
from infra.graph_checks.helm_values import helm_merge
from infra.observability.dashboards import DASHBOARD_LABEL, DASHBOARD_LABEL_VALUE, dashboard_config_maps
from infra.observability.rules import prometheus_rule_specs
from infra.preview.render import SECRET, kubernetes_objects, plain, to_document
from infra.versions import (
    DCGM_EXPORTER,
    ELASTICSEARCH_EXPORTER,
    HELM_CHARTS,
    KUBE_PROMETHEUS_STACK,
    PROMETHEUS_OPERATOR_CRDS,
)
from policies.kubernetes.helm.grafana_no_anonymous_access import kubernetes_helm_grafana_no_anonymous_access
from policies.kubernetes.helm.grafana_no_default_password import kubernetes_helm_grafana_no_default_password
from tests.conftest import only
from tests.crd_schemas import validate_custom_resource
from tests.policies.support import validate_resource

RELEASE = "kubernetes:helm.sh/v3:Release"
PROMETHEUS_RULE = "kubernetes:monitoring.coreos.com/v1:PrometheusRule"
SERVICE_MONITOR = "kubernetes:monitoring.coreos.com/v1:ServiceMonitor"
POD_MONITOR = "kubernetes:monitoring.coreos.com/v1:PodMonitor"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"


def metrics_config(environment: str) -> MetricsConfig:
    return MetricsConfig.model_validate(ENVIRONMENT_DEFAULTS[environment]["metrics"])


def values(environment: str = "prod") -> dict[str, Any]:
    return monitoring.metrics_stack_values(metrics_config(environment), DEFAULT_STORAGE_CLASS, "aip-prod")


def paths(value: Any, prefix: str = "") -> list[str]:
    """Every key path of a nested dict, for looking for keys anywhere."""
    if not isinstance(value, dict):
        return []
    found = []
    for key, child in value.items():
        found += [f"{prefix}{key}", *paths(child, f"{prefix}{key}.")]
    return found


def tolerates(tolerations: list[dict[str, str]], taint: dict[str, str]) -> bool:
    """Kubernetes' matching of one taint (EKS effect names) against a pod's tolerations."""
    effect = {"NO_SCHEDULE": "NoSchedule", "NO_EXECUTE": "NoExecute",
              "PREFER_NO_SCHEDULE": "PreferNoSchedule"}[taint["effect"]]
    for toleration in tolerations:
        if toleration.get("effect") not in (None, "", effect):
            continue
        if toleration.get("operator") == "Exists" and toleration.get("key") in (None, "", taint["key"]):
            return True
        if toleration.get("key") == taint["key"] and toleration.get("value") == taint["value"]:
            return True
    return False


def relabel(labels: dict[str, str], configs: list[dict[str, Any]]) -> dict[str, str] | None:
    """Prometheus's target relabelling (replace and keep), enough to follow what a target ends up with."""
    labels = dict(labels)
    for config in configs:
        value = config.get("separator", ";").join(labels.get(s, "") for s in config.get("sourceLabels", []))
        match = re.fullmatch(config.get("regex", "(.*)"), value)
        if config["action"] == "keep":
            if not match:
                return None
        elif config["action"] == "replace" and match:
            result = match.expand(re.sub(r"\$(\d+)", r"\\\1", config.get("replacement", "$1")))
            if result:
                labels[config["targetLabel"]] = result
            else:
                labels.pop(config["targetLabel"], None)
    return labels


POOLS = [GpuPoolConfig(name="inference-l40s", instance_types=("g6e.2xlarge",), max_size=4),
         GpuPoolConfig(name="search-h100", instance_types=("p5.48xlarge",), max_size=2, dedicated_team="search")]


# -- kube-prometheus-stack values ------------------------------------------------------------------------

def test_chart_pins_are_exact_released_versions():
    charts = (PROMETHEUS_OPERATOR_CRDS, KUBE_PROMETHEUS_STACK, DCGM_EXPORTER)
    assert all(chart in HELM_CHARTS for chart in charts)
    # The CRDs are listed, and installed, before the stack whose operator reads them.
    assert HELM_CHARTS.index(PROMETHEUS_OPERATOR_CRDS) < HELM_CHARTS.index(KUBE_PROMETHEUS_STACK)
    assert PROMETHEUS_OPERATOR_CRDS.chart == "prometheus-operator-crds"
    assert {KUBE_PROMETHEUS_STACK.repository, PROMETHEUS_OPERATOR_CRDS.repository} == \
        {"https://prometheus-community.github.io/helm-charts"}
    assert DCGM_EXPORTER.repository == "https://nvidia.github.io/dcgm-exporter/helm-charts"
    assert all(re.fullmatch(r"\d+\.\d+\.\d+", c.version) for c in charts)


def test_the_stack_installs_no_crds_and_the_crd_release_keeps_them_on_uninstall():
    # kube-prometheus-stack's CRDs sit in its crds/ directory, which Helm never upgrades.
    assert values()["crds"] == {"enabled": False}
    assert not [p for p in paths(values()) if p.startswith("crds.") and p != "crds.enabled"]
    assert monitoring.crds_values() == {"crds": {"annotations": {"helm.sh/resource-policy": "keep"}}}


def test_grafana_admin_comes_from_the_generated_secret_and_no_password_is_set():
    grafana = values()["grafana"]
    assert grafana["admin"] == {"existingSecret": monitoring.GRAFANA_ADMIN_SECRET,
                                "userKey": monitoring.ADMIN_USER_KEY, "passwordKey": monitoring.ADMIN_PASSWORD_KEY}
    assert not [p for p in paths(values()) if p.rsplit(".", 1)[-1] in ("adminPassword", "admin_password")]
    secret_key = grafana["envValueFrom"]["GF_SECURITY_SECRET_KEY"]["secretKeyRef"]
    assert secret_key["name"] == monitoring.GRAFANA_ADMIN_SECRET
    data = monitoring.grafana_secret_data("generated-password", "generated-key")
    assert data[grafana["admin"]["userKey"]] == "admin"
    assert data[grafana["admin"]["passwordKey"]] == "generated-password"
    assert data[secret_key["key"]] == "generated-key"


def test_grafana_lets_no_anonymous_user_or_sign_up_in_and_only_reads_its_namespace():
    grafana = values()["grafana"]
    ini = grafana["grafana.ini"]
    assert ini["auth.anonymous"]["enabled"] is False
    assert ini["users"]["allow_sign_up"] is False
    assert ini["security"]["cookie_secure"] is True
    # No SSO yet: the login form is the only way in, so it must stay on.
    assert ini["auth"]["disable_login_form"] is False
    dashboards = grafana["sidecar"]["dashboards"]
    assert (dashboards["label"], dashboards["labelValue"]) == (DASHBOARD_LABEL, DASHBOARD_LABEL_VALUE)
    assert dashboards["searchNamespace"] == MONITORING_NAMESPACE
    assert grafana["rbac"]["namespaced"] is True
    assert grafana["persistence"]["enabled"] is False and grafana["initChownData"]["enabled"] is False


@pytest.mark.parametrize(("environment", "retention", "gib", "replicas"), [
    ("dev", "7d", 50, 1), ("staging", "15d", 100, 2), ("prod", "30d", 200, 2)])
def test_prometheus_keeps_the_configured_days_on_an_encrypted_volume(environment, retention, gib, replicas):
    prometheus = values(environment)["prometheus"]
    spec = prometheus["prometheusSpec"]
    assert spec["retention"] == retention and spec["replicas"] == replicas
    # The size limit stays below the volume, so Prometheus drops old blocks before the disk fills.
    assert int(spec["retentionSize"].removesuffix("GB")) < gib
    claim = spec["storageSpec"]["volumeClaimTemplate"]["spec"]
    assert claim["storageClassName"] == DEFAULT_STORAGE_CLASS
    assert claim["resources"]["requests"]["storage"] == f"{gib}Gi"
    assert prometheus["podDisruptionBudget"]["enabled"] is (replicas > 1)
    alertmanager = values(environment)["alertmanager"]
    assert alertmanager["alertmanagerSpec"]["replicas"] == replicas
    assert alertmanager["alertmanagerSpec"]["storage"]["volumeClaimTemplate"]["spec"]["storageClassName"] == \
        DEFAULT_STORAGE_CLASS


def test_prometheus_selects_every_monitor_and_rule_of_the_cluster_and_runs_non_root():
    spec = values()["prometheus"]["prometheusSpec"]
    for kind in ("rule", "serviceMonitor", "podMonitor", "probe", "scrapeConfig"):
        assert spec[f"{kind}SelectorNilUsesHelmValues"] is False
    for pod in (spec, values()["alertmanager"]["alertmanagerSpec"]):
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}


def test_node_labels_reach_kube_state_metrics_and_node_exporter_runs_on_every_gpu_pool():
    chart = values()
    allowlist = chart["kube-state-metrics"]["metricLabelsAllowlist"]
    nodes = next(entry for entry in allowlist if entry.startswith("nodes="))
    assert POOL_LABEL in nodes.removeprefix("nodes=[").removesuffix("]").split(",")
    exporter = chart["prometheus-node-exporter"]
    assert exporter["namespaceOverride"] == "kube-system"
    assert all(tolerates(exporter["tolerations"], taint) for pool in POOLS for taint in gpu_taints(pool))


def test_default_rules_stay_and_only_eks_managed_components_are_off():
    chart = values()
    assert chart["defaultRules"]["create"] is True
    # The CRDs are off too: their own release installs them.
    assert {k for k, v in chart.items() if v == {"enabled": False}} == {*monitoring.EKS_MANAGED_COMPONENTS, "crds"}


def test_alertmanager_routes_by_team_to_defined_receivers():
    """Routing from stack config is tested in detail in tests/infra/test_alert_routing.py."""
    from infra.config.alerts import AlertsConfig

    alerts = AlertsConfig.model_validate({
        "receivers": [{"name": "platform", "type": "webhook", "url": "https://hooks.example.com/platform"}],
        "routes": [{"team": "platform", "receiver": "platform"}]})
    config = monitoring.alertmanager_config(alerts)
    route = config["route"]
    assert {"alertname", "team", "namespace"} <= set(route["group_by"])
    defined = {r["name"] for r in config["receivers"]}
    assert {route["receiver"], *(r["receiver"] for r in route["routes"])} <= defined
    platform = [r for r in route["routes"] if r["matchers"] == ['team = "platform"']]
    assert [r["receiver"] for r in platform] == ["platform"]
    assert route["receiver"] == "default"


# -- GPU metrics -------------------------------------------------------------------------------------------

def test_dcgm_exporter_runs_on_every_gpu_node_and_nowhere_else():
    chart = gpu_metrics.dcgm_exporter_values()
    for pool in POOLS:
        assert all(tolerates(chart["tolerations"], taint) for taint in gpu_taints(pool))
        assert chart["nodeSelector"].items() <= gpu_labels(pool).items()
    assert chart["nodeSelector"] == {"ai-platform.io/accelerator": "nvidia"}


def test_dcgm_exporter_is_non_root_without_capabilities_or_profiling_fields():
    chart = gpu_metrics.dcgm_exporter_values()
    context = chart["securityContext"]
    assert context["runAsNonRoot"] is True and context["runAsUser"] != 0
    assert context["capabilities"] == {"add": [], "drop": ["ALL"]} and context["allowPrivilegeEscalation"] is False
    assert chart["serviceMonitor"] == {"enabled": False}
    rows = [line.split(",", 2) for line in chart["customMetrics"].splitlines()]
    assert [r[0] for r in rows] == [field for field, _, _ in gpu_metrics.GPU_COUNTERS]
    assert {r[1].strip() for r in rows} <= {"gauge", "counter", "label"}
    assert not [name for name in gpu_metrics.exported_metrics() if name.startswith("DCGM_FI_PROF_")]


def test_dcgm_exporter_values_override_upstreams_root_and_sys_admin():
    # dcgm-exporter 4.8.2's container context; Helm merges ours into it key by key.
    # https://github.com/NVIDIA/dcgm-exporter/blob/4.5.3-4.8.2/deployment/values.yaml
    upstream = {"securityContext": {"runAsNonRoot": False, "runAsUser": 0, "allowPrivilegeEscalation": False,
                                    "capabilities": {"add": ["SYS_ADMIN"], "drop": ["ALL"]}}}
    context = helm_merge(upstream, gpu_metrics.dcgm_exporter_values())["securityContext"]
    assert context["capabilities"] == {"add": [], "drop": ["ALL"]}
    assert context["runAsNonRoot"] is True and context["runAsUser"] == gpu_metrics.EXPORTER_UID


def test_every_gpu_metric_the_rules_and_dashboards_read_is_exported():
    text = json.dumps([prometheus_rule_specs(), dashboard_config_maps()])
    used = set(re.findall(r"DCGM_FI_[A-Z0-9_]+", text))
    assert used, "no rule or dashboard reads a GPU metric"
    assert used <= gpu_metrics.exported_metrics()


def test_gpu_series_carry_their_node_and_pool():
    spec = gpu_metrics.service_monitor_spec()
    assert spec["attachMetadata"] == {"node": True}
    endpoint = only_one(spec["endpoints"])
    target = {"__meta_kubernetes_pod_node_name": "ip-10-66-1-5.ec2.internal",
              "__meta_kubernetes_node_label_ai_platform_io_gpu_pool": "inference-l40s"}
    labels = relabel(target, endpoint["relabelings"])
    assert (labels["node"], labels["gpu_pool"]) == ("ip-10-66-1-5.ec2.internal", "inference-l40s")
    assert endpoint["port"] == "metrics"


def only_one(items: list[Any]) -> Any:
    assert len(items) == 1
    return items[0]


# -- team scrape configuration ---------------------------------------------------------------------------

def model(runtime: str) -> ModelDeployment:
    fields = {"name": "digits", "runtime": runtime}
    if runtime == "kserve":
        fields["image"] = "123456789012.dkr.ecr.us-east-1.amazonaws.com/digits:1.0.0"
    return ModelDeployment.model_validate(fields)


def pod_targets(runtime: str) -> list[dict[str, str]]:
    """Service-discovery labels of each container port of a predictor pod of ``runtime``."""
    if runtime == "torchserve":
        ports = torchserve_runtime_spec()["containers"][0]["ports"]
    else:
        ports = predictor_spec(model("kserve"), None, None)["containers"][0]["ports"]
    annotation = scrape_annotations(model(runtime))["prometheus.io/port"]
    return [{"__meta_kubernetes_pod_container_port_name": p.get("name", ""),
             "__meta_kubernetes_pod_container_port_number": str(p["containerPort"]),
             "__meta_kubernetes_pod_annotation_prometheus_io_port": annotation,
             "__meta_kubernetes_pod_label_serving_kserve_io_inferenceservice": "digits"} for p in ports]


def scraped(runtime: str, team: str = "vision") -> list[tuple[str, dict[str, str]]]:
    """(port number, final labels) of every target the team's PodMonitor makes of one predictor pod."""
    found = []
    for endpoint in team_monitoring.pod_monitor_spec(team)["podMetricsEndpoints"]:
        for target in pod_targets(runtime):
            if target["__meta_kubernetes_pod_container_port_name"] != endpoint["port"]:
                continue
            labels = relabel(target, endpoint["relabelings"])
            if labels is not None:
                found.append((target["__meta_kubernetes_pod_container_port_number"], labels))
    return found


@pytest.mark.parametrize(("runtime", "port"), [("torchserve", "8082"), ("kserve", "8080")])
def test_team_pod_monitor_scrapes_each_runtime_once_on_its_metrics_port(runtime, port):
    targets = scraped(runtime)
    assert [number for number, _ in targets] == [port]
    labels = targets[0][1]
    assert (labels["team"], labels["inferenceservice"]) == ("vision", "digits")
    assert port == scrape_annotations(model(runtime))["prometheus.io/port"]


def test_team_network_policy_lets_prometheus_reach_both_metrics_ports():
    rule = network_policies()["allow-metrics-scrape"]["ingress"][0]
    assert rule["from"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] == MONITORING_NAMESPACE
    assert {p["port"] for p in rule["ports"]} >= {8080, 8082}


# -- custom resources against their CRDs -------------------------------------------------------------------

def manifest(kind: str, name: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": kind,
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def test_monitors_and_rules_match_their_crds():
    validate_custom_resource(manifest("ServiceMonitor", "dcgm-exporter", "kube-system",
                                      gpu_metrics.service_monitor_spec()))
    validate_custom_resource(manifest("PodMonitor", "inference-services", "vision",
                                      team_monitoring.pod_monitor_spec("vision")))
    rules = prometheus_rule_specs()
    assert rules
    for name, spec in rules.items():
        validate_custom_resource(manifest("PrometheusRule", name, MONITORING_NAMESPACE, spec))


def test_a_crd_violation_is_caught():
    spec = gpu_metrics.service_monitor_spec()
    spec["endpoints"][0]["relabelings"][0]["target_label"] = "node"
    with pytest.raises(Exception, match="target_label"):
        validate_custom_resource(manifest("ServiceMonitor", "dcgm-exporter", "kube-system", spec))


# -- components under mocks ---------------------------------------------------------------------------------

def test_metrics_stack_creates_a_restricted_namespace_secret_release_rules_and_dashboards(run_component):
    def build():
        provider = k8s.Provider("k8s", kubeconfig="{}")
        MetricsStack("m", MetricsStackArgs(config=metrics_config("prod"), cluster_name="aip-prod",
                                           storage_class=DEFAULT_STORAGE_CLASS, provider=provider))

    result = run_component(build)
    namespace = only(result, "kubernetes:core/v1:Namespace").inputs["metadata"]
    assert namespace["name"] == MONITORING_NAMESPACE
    assert namespace["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    secret = only(result, "kubernetes:core/v1:Secret").inputs
    assert secret["metadata"] == {"name": monitoring.GRAFANA_ADMIN_SECRET, "namespace": MONITORING_NAMESPACE}
    # The generated values make the whole of stringData a secret in the stack state.
    assert plain(secret["stringData"]) == SECRET
    passwords = result.of_type("random:index/randomPassword:RandomPassword")
    assert len(passwords) == 2 and all(p.inputs["length"] >= 32 for p in passwords)
    releases = {r.inputs["chart"]: r for r in result.of_type(RELEASE)}
    assert set(releases) == {KUBE_PROMETHEUS_STACK.chart, PROMETHEUS_OPERATOR_CRDS.chart}
    release, crds = releases[KUBE_PROMETHEUS_STACK.chart], releases[PROMETHEUS_OPERATOR_CRDS.chart]
    assert release.inputs["version"] == KUBE_PROMETHEUS_STACK.version
    assert release.inputs["repositoryOpts"] == {"repo": KUBE_PROMETHEUS_STACK.repository}
    assert release.inputs["values"]["crds"] == {"enabled": False}
    assert (crds.inputs["name"], crds.inputs["version"]) == (monitoring.CRDS_RELEASE_NAME,
                                                             PROMETHEUS_OPERATOR_CRDS.version)
    assert crds.inputs["repositoryOpts"] == {"repo": PROMETHEUS_OPERATOR_CRDS.repository}
    assert crds.inputs["values"] == monitoring.crds_values()
    # CRDs an earlier install of the stack created carry no Helm ownership metadata: the release adopts them.
    assert crds.inputs["takeOwnership"] is True
    assert release.inputs["namespace"] == crds.inputs["namespace"] == MONITORING_NAMESPACE
    assert secret_urn(result) in release.options["dependsOn"]
    assert crds.urn in release.options["dependsOn"]
    for policy in (kubernetes_helm_grafana_no_default_password, kubernetes_helm_grafana_no_anonymous_access):
        assert validate_resource(policy, RELEASE, plain(release.inputs)) == []
    rules = result.of_type(PROMETHEUS_RULE)
    assert {r.inputs["metadata"]["name"] for r in rules} == set(prometheus_rule_specs())
    dashboards = result.of_type(CONFIG_MAP)
    assert {d.inputs["metadata"]["name"] for d in dashboards} == set(dashboard_config_maps())
    for created in (*rules, *dashboards):
        assert created.inputs["metadata"]["namespace"] == MONITORING_NAMESPACE
        assert release.urn in created.options["dependsOn"]
    assert all(crds.urn in rule.options["dependsOn"] for rule in rules)
    for dashboard in dashboards:
        assert dashboard.inputs["metadata"]["labels"][DASHBOARD_LABEL] == DASHBOARD_LABEL_VALUE


def secret_urn(result) -> str:
    return only(result, "kubernetes:core/v1:Secret").urn


def test_gpu_metrics_installs_the_exporter_and_its_service_monitor_after_the_crds(run_component):
    def build():
        provider = k8s.Provider("k8s", kubeconfig="{}")
        crds = pulumi.CustomResource("test:index:Crds", "crds")
        GpuMetrics("g", GpuMetricsArgs(provider=provider, depends_on=(crds,)))

    result = run_component(build)
    release = only(result, RELEASE)
    assert (release.inputs["chart"], release.inputs["version"]) == (DCGM_EXPORTER.chart, DCGM_EXPORTER.version)
    assert release.inputs["namespace"] == gpu_metrics.NAMESPACE
    monitor = only(result, SERVICE_MONITOR)
    assert monitor.inputs["metadata"]["namespace"] == gpu_metrics.NAMESPACE
    assert release.urn in monitor.options["dependsOn"]
    assert only(result, "test:index:Crds").urn in monitor.options["dependsOn"]


def test_team_monitoring_puts_its_pod_monitor_in_the_team_namespace(run_component):
    def build():
        provider = k8s.Provider("k8s", kubeconfig="{}", namespace="vision")
        TeamMonitoring("t", TeamMonitoringArgs(team="vision", provider=provider))

    monitor = only(run_component(build), POD_MONITOR).inputs
    assert monitor["metadata"] == {"name": team_monitoring.POD_MONITOR_NAME, "namespace": "vision"}
    assert monitor["spec"] == plain(team_monitoring.pod_monitor_spec("vision"))


# -- stack previews ----------------------------------------------------------------------------------------

def test_prod_preview_holds_the_metrics_stack_gpu_metrics_rules_and_dashboards(preview):
    document = json.loads(json.dumps(to_document(preview("prod"))))
    resources = document["resources"]
    charts = {r["inputs"]["chart"]: r["inputs"] for r in resources if r["type"] == RELEASE}
    assert charts[KUBE_PROMETHEUS_STACK.chart]["version"] == KUBE_PROMETHEUS_STACK.version
    assert charts[DCGM_EXPORTER.chart]["version"] == DCGM_EXPORTER.version
    claim = charts[KUBE_PROMETHEUS_STACK.chart]["values"]["prometheus"]["prometheusSpec"]["storageSpec"]
    assert claim["volumeClaimTemplate"]["spec"]["storageClassName"] == document["outputs"]["storageClass"]
    assert {r["inputs"]["metadata"]["name"] for r in resources if r["type"] == PROMETHEUS_RULE} == \
        set(prometheus_rule_specs())
    dashboards = {r["inputs"]["metadata"]["name"] for r in resources if r["type"] == CONFIG_MAP
                  and r["inputs"]["metadata"]["labels"].get(DASHBOARD_LABEL) == DASHBOARD_LABEL_VALUE}
    assert dashboards == set(dashboard_config_maps())
    monitors = {r["inputs"]["metadata"]["name"]: r["inputs"] for r in resources if r["type"] == SERVICE_MONITOR}
    assert monitors["dcgm-exporter"]["spec"] == plain(gpu_metrics.service_monitor_spec())
    assert document["outputs"]["grafanaAdminSecret"] == f"{MONITORING_NAMESPACE}/{monitoring.GRAFANA_ADMIN_SECRET}"
    assert charts[PROMETHEUS_OPERATOR_CRDS.chart]["version"] == PROMETHEUS_OPERATOR_CRDS.version
    assert charts[KUBE_PROMETHEUS_STACK.chart]["values"]["crds"] == {"enabled": False}


def test_everything_that_creates_monitoring_objects_waits_for_the_crd_release(preview):
    records = preview("prod").resources
    releases = {r.inputs["chart"]: r for r in records if r.type == RELEASE}
    crds = releases[PROMETHEUS_OPERATOR_CRDS.chart]
    # The operator and its webhook come up against CRDs of its own version.
    assert crds.urn in releases[KUBE_PROMETHEUS_STACK.chart].options["dependsOn"]
    # Custom resources of monitoring.coreos.com, and a chart that renders a ServiceMonitor.
    waiting = [r for r in records if r.type.startswith("kubernetes:monitoring.coreos.com/")]
    assert {PROMETHEUS_RULE, SERVICE_MONITOR} <= {r.type for r in waiting}
    waiting.append(releases[ELASTICSEARCH_EXPORTER.chart])
    assert [r.name for r in waiting if crds.urn not in r.options["dependsOn"]] == []


@pytest.mark.parametrize("stack", ["vision-prod", "search-prod"])
def test_team_preview_has_a_valid_pod_monitor_for_its_models(preview, stack):
    team = stack.split("-")[0]
    monitors = [m for m in kubernetes_objects(preview(stack)) if m["kind"] == "PodMonitor"]
    assert [m["metadata"]["namespace"] for m in monitors] == [team]
    validate_custom_resource(monitors[0])
