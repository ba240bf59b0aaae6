"""KEDA on the platform: the pinned chart in its own restricted namespace, its values against the upstream chart,
the ServiceMonitor of its operator, and the platform outputs team stacks scale with."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s
import pytest
import yaml

from infra.components import keda, monitoring
from infra.components.keda import Keda, KedaArgs, keda_values, service_monitor_spec
from infra.components.team_workspace import namespace_labels
from infra.config.observability import MetricsConfig
from infra.graph_checks.chart_values import check_release_values, upstream_charts_dir
from infra.versions import HELM_CHARTS, KEDA
from tests.conftest import only
from tests.crd_schemas import validate_custom_resource
from tests.prerequisites import unavailable

RELEASE = "kubernetes:helm.sh/v3:Release"
SERVICE_MONITOR = "kubernetes:monitoring.coreos.com/v1:ServiceMonitor"
COMPONENTS = ("operator", "metricServer", "webhooks")


def test_keda_is_pinned_once():
    assert KEDA in HELM_CHARTS
    assert (KEDA.chart, KEDA.version, KEDA.repository) == ("keda", "2.20.2", "https://kedacore.github.io/charts")


def test_every_component_runs_on_the_system_nodes_non_root_with_a_read_only_root():
    values = keda_values("aip-dev")
    assert values["nodeSelector"] == {"ai-platform.io/node-role": "system"}
    for component in COMPONENTS:
        assert values["podSecurityContext"][component] == {"runAsNonRoot": True}
        context = values["securityContext"][component]
        assert context["capabilities"] == {"drop": ["ALL"]} and context["allowPrivilegeEscalation"] is False
        assert context["readOnlyRootFilesystem"] is True and context["seccompProfile"] == {"type": "RuntimeDefault"}


def test_keda_gets_the_least_access_it_needs_and_its_crds_outlive_it():
    values = keda_values("aip-dev")
    # No Secret outside its namespace, no `*/scale` of every API group.
    assert values["permissions"] == {"operator": {"restrict": {"secret": True}},
                                     "metricServer": {"restrict": {"secret": True}}}
    assert values["rbac"] == {"enabledCustomScaledRefKinds": False}
    assert values["crds"]["additionalAnnotations"] == {"helm.sh/resource-policy": "keep"}
    assert values["prometheus"]["operator"]["enabled"] is True
    assert values["prometheus"]["operator"]["serviceMonitor"]["enabled"] is False


def test_every_value_exists_in_the_pinned_chart():
    folder = upstream_charts_dir()
    if folder is None:
        unavailable("the chart values are checked against the pinned chart only when AIP_UPSTREAM_CHARTS_DIR "
                    "names its folder (CI sets it)")
    assert check_release_values(KEDA.chart, KEDA.version, keda_values("aip-dev"), folder) == []
    broken = {**keda_values("aip-dev"), "operator": {"nodeSelectors": {}}}
    assert [f.subject for f in check_release_values(KEDA.chart, KEDA.version, broken, folder)] == \
        ["keda/operator.nodeSelectors"]


def test_the_service_monitor_scrapes_the_operators_metrics_port():
    spec = service_monitor_spec()
    # The chart labels the operator's Service with its name and the release; `metrics` is port 8080 there.
    assert spec["selector"]["matchLabels"] == {"app.kubernetes.io/name": "keda-operator",
                                               "app.kubernetes.io/instance": "keda"}
    assert spec["namespaceSelector"] == {"matchNames": ["keda"]}
    assert spec["endpoints"][0]["port"] == "metrics"
    validate_custom_resource({"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
                              "metadata": {"name": keda.OPERATOR_NAME, "namespace": keda.NAMESPACE}, "spec": spec})


def test_keda_installs_in_a_restricted_namespace_and_only_its_monitor_waits_for_the_metrics_stack(run_component):
    def build():
        provider = k8s.Provider("k8s", kubeconfig="{}")
        # Stands in for the metrics stack, which installs the ServiceMonitor CRD.
        metrics = k8s.core.v1.Namespace("metrics", opts=pulumi.ResourceOptions(provider=provider))
        Keda("keda", KedaArgs(cluster_name="aip-dev", provider=provider, monitoring=(metrics,)))

    result = run_component(build)
    namespace = next(r for r in result.of_type("kubernetes:core/v1:Namespace") if r.name == "keda-namespace")
    assert namespace.inputs["metadata"]["labels"] == namespace_labels("keda")
    assert namespace.inputs["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    release = only(result, RELEASE)
    assert (release.inputs["chart"], release.inputs["version"], release.inputs["namespace"]) == \
        ("keda", "2.20.2", "keda")
    assert release.inputs["values"]["clusterName"] == "aip-dev"
    assert namespace.urn in release.options["dependsOn"]
    assert not any(urn.endswith("::metrics") for urn in release.options["dependsOn"])
    monitor = only(result, SERVICE_MONITOR)
    assert monitor.inputs["metadata"] == {"name": "keda-operator", "namespace": "keda"}
    assert release.urn in monitor.options["dependsOn"]
    assert any(urn.endswith("::metrics") for urn in monitor.options["dependsOn"])


def test_the_prometheus_url_is_the_service_kube_prometheus_stack_creates():
    assert monitoring.PROMETHEUS_URL == "http://kube-prometheus-stack-prometheus.monitoring.svc.cluster.local:9090"
    values = monitoring.metrics_stack_values(
        MetricsConfig.model_validate({"retentionDays": 7, "storageGib": 50, "replicas": 1}), "gp3", "aip-dev")
    # Nothing renames the chart's objects or moves Prometheus' port.
    assert "fullnameOverride" not in values and "nameOverride" not in values
    assert "service" not in values["prometheus"]
    folder = upstream_charts_dir()
    if folder is not None:
        upstream = yaml.safe_load((folder / "kube-prometheus-stack-88.5.3" / "values.yaml").read_text())
        assert upstream["prometheus"]["service"]["port"] == monitoring.PROMETHEUS_PORT
        assert upstream["fullnameOverride"] == ""


@pytest.mark.parametrize(("stack", "scale_to_zero"), [("dev", True), ("prod", False)])
def test_platforms_run_keda_and_tell_team_stacks_where_prometheus_is(preview, stack, scale_to_zero):
    result = preview(stack)
    assert [r.inputs["namespace"] for r in result.of_type(RELEASE) if r.inputs["chart"] == "keda"] == ["keda"]
    assert result.outputs["prometheusUrl"] == monitoring.PROMETHEUS_URL
    assert result.outputs["scaleToZero"] is scale_to_zero
