"""Kubernetes policies: compliant baselines shaped like the program's objects, one mutation per violation."""

from __future__ import annotations

from typing import Any

import pytest

from policies.kubernetes.core.namespace_pod_security import NAMESPACE, kubernetes_core_namespace_pod_security_restricted
from policies.kubernetes.core.team_namespace_default_deny import (
    NETWORK_POLICY,
    kubernetes_networking_namespace_default_deny,
)
from policies.kubernetes.core.team_namespace_resource_quota import (
    RESOURCE_QUOTA,
    kubernetes_core_namespace_gpu_resource_quota,
)
from policies.kubernetes.elastic.elasticsearch_tls import ELASTICSEARCH, kubernetes_elastic_elasticsearch_tls
from policies.kubernetes.helm.grafana_no_anonymous_access import kubernetes_helm_grafana_no_anonymous_access
from policies.kubernetes.helm.grafana_no_default_password import kubernetes_helm_grafana_no_default_password
from policies.kubernetes.helm.release_pinned_version import RELEASE, kubernetes_helm_release_pinned_version
from policies.kubernetes.kserve.inferenceservice_gpu_toleration import (
    kubernetes_kserve_inferenceservice_gpu_toleration,
)
from policies.kubernetes.kserve.inferenceservice_metrics_scrape import (
    kubernetes_kserve_inferenceservice_metrics_scrape,
)
from policies.kubernetes.kserve.inferenceservice_pinned_images import kubernetes_kserve_inferenceservice_pinned_images
from policies.kubernetes.kserve.inferenceservice_resources import kubernetes_kserve_inferenceservice_resources
from policies.kubernetes.kserve.inferenceservice_service_account import (
    kubernetes_kserve_inferenceservice_service_account,
)
from policies.kubernetes.workloads.pod_no_added_capabilities import kubernetes_core_pod_no_added_capabilities
from policies.kubernetes.workloads.pod_no_host_namespaces import kubernetes_core_pod_no_host_namespaces
from policies.kubernetes.workloads.pod_no_host_path import kubernetes_core_pod_no_host_path
from policies.kubernetes.workloads.pod_no_privileged import kubernetes_core_pod_no_privileged
from policies.kubernetes.workloads.pods import INFERENCE_SERVICE
from tests.policies.support import DELETE, mutate, resource, validate_resource, validate_stack

RUNTIME = "kubernetes:serving.kserve.io/v1alpha1:ClusterServingRuntime"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SECURE = {"privileged": False, "allowPrivilegeEscalation": False, "runAsNonRoot": True,
          "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}
GPU_RESOURCES = {"requests": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1"},
                 "limits": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1"}}
ISVC = {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
        "metadata": {"name": "digits", "namespace": "vision"},
        "spec": {"predictor": {
            "serviceAccountName": "model-serving", "minReplicas": 2, "maxReplicas": 8,
            "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "8082"},
            "nodeSelector": {"ai-platform.io/gpu-pool": "inference-l40s"},
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"}],
            "model": {"modelFormat": {"name": "pytorch"}, "runtime": "aip-torchserve", "securityContext": SECURE,
                      "storageUri": "s3://models/teams/vision/models/digits/1/", "resources": GPU_RESOURCES}}}}
CUSTOM_ISVC = mutate(mutate(ISVC, "spec.predictor.model", DELETE), "spec.predictor.containers", [{
    "name": "kserve-container", "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/ranker@sha256:" + "a" * 64,
    "resources": GPU_RESOURCES, "securityContext": SECURE}])
SERVING_RUNTIME = {"kind": "ClusterServingRuntime", "metadata": {"name": "aip-torchserve"}, "spec": {
    "supportedModelFormats": [{"name": "pytorch", "version": "1"}],
    "containers": [{"name": "kserve-container", "image": "pytorch/torchserve-kfs:0.12.0", "securityContext": SECURE,
                    "resources": {"requests": {"cpu": "1", "memory": "2Gi"},
                                  "limits": {"cpu": "1", "memory": "2Gi"}}}]}}
DEPLOY = {"kind": "Deployment", "metadata": {"name": "web", "namespace": "vision"}, "spec": {"template": {"spec": {
    "volumes": [{"name": "scratch", "emptyDir": {}}],
    "containers": [{"name": "web", "image": "public.ecr.aws/nginx/nginx:1.27.0", "securityContext": SECURE}]}}}}
NS = {"kind": "Namespace", "metadata": {"name": "vision", "labels": {
    "ai-platform.io/team": "vision", "pod-security.kubernetes.io/enforce": "restricted"}}}
HELM = {"chart": "cert-manager", "version": "v1.20.3", "namespace": "cert-manager",
        "repositoryOpts": {"repo": "https://charts.jetstack.io"}}
PROM_STACK = {"chart": "kube-prometheus-stack", "version": "77.0.0", "values": {"grafana": {
    "admin": {"existingSecret": "grafana-admin"}, "grafana.ini": {"auth.anonymous": {"enabled": False}}}}}
GRAFANA = {"chart": "oci://ghcr.io/grafana/helm-charts/grafana", "version": "10.1.0",
           "values": {"adminPassword": "Zq8-generated-elsewhere", "grafana.ini": {}}}
ES = {"kind": "Elasticsearch", "metadata": {"name": "logs"}, "spec": {"version": "9.1.0", "http": {"tls": {}}}}
CONTAINER = "spec.predictor.model"

CASES: list[tuple[Any, str, dict[str, Any], str, Any, str]] = [
    (kubernetes_core_namespace_pod_security_restricted, NAMESPACE, NS,
     "metadata.labels.[pod-security.kubernetes.io/enforce]", "baseline",
     "Namespace 'vision' has pod-security.kubernetes.io/enforce='baseline'; it must be 'restricted'."),
    (kubernetes_core_namespace_pod_security_restricted, NAMESPACE, NS,
     "metadata.labels.[pod-security.kubernetes.io/enforce]", DELETE,
     "Namespace 'vision' has pod-security.kubernetes.io/enforce=null; it must be 'restricted'."),
    (kubernetes_kserve_inferenceservice_resources, INFERENCE_SERVICE, ISVC, f"{CONTAINER}.resources.limits", DELETE,
     "InferenceService 'res' container at spec.predictor.model has no resources.limits for cpu, memory."),
    (kubernetes_kserve_inferenceservice_resources, INFERENCE_SERVICE, CUSTOM_ISVC,
     "spec.predictor.containers.0.resources.requests.memory", DELETE,
     "InferenceService 'res' container at spec.predictor.containers[0] has no resources.requests for memory."),
    (kubernetes_kserve_inferenceservice_gpu_toleration, INFERENCE_SERVICE, ISVC, "spec.predictor.tolerations", DELETE,
     "InferenceService 'res' spec.predictor requests nvidia.com/gpu but has no toleration for the nvidia.com/gpu "
     "taint."),
    (kubernetes_kserve_inferenceservice_gpu_toleration, INFERENCE_SERVICE, ISVC, f"{CONTAINER}.resources",
     {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
     "InferenceService 'res' spec.predictor tolerates the nvidia.com/gpu taint without requesting nvidia.com/gpu; "
     "it would occupy GPU nodes without using a GPU."),
    (kubernetes_kserve_inferenceservice_pinned_images, INFERENCE_SERVICE, CUSTOM_ISVC,
     "spec.predictor.containers.0.image", "123456789012.dkr.ecr.us-east-1.amazonaws.com/ranker:latest",
     "InferenceService 'res' container at spec.predictor.containers[0] image "
     "'123456789012.dkr.ecr.us-east-1.amazonaws.com/ranker:latest' uses the 'latest' tag; pin a digest (@sha256: "
     "and 64 hex characters) or a version tag of at least major.minor (1.2, 1.2.3, v2.1, 0.12.0-gpu) with no moving "
     "word such as latest, main, stable, nightly, snapshot or dev."),
    (kubernetes_kserve_inferenceservice_pinned_images, RUNTIME, SERVING_RUNTIME, "spec.containers.0.image",
     "pytorch/torchserve-kfs",
     "ClusterServingRuntime 'res' container at spec.containers[0] image 'pytorch/torchserve-kfs' has no tag or "
     "digest; pin a digest (@sha256: and 64 hex characters) or a version tag of at least major.minor (1.2, 1.2.3, "
     "v2.1, 0.12.0-gpu) with no moving word such as latest, main, stable, nightly, snapshot or dev."),
    (kubernetes_kserve_inferenceservice_service_account, INFERENCE_SERVICE, ISVC,
     "spec.predictor.serviceAccountName", DELETE,
     "InferenceService 'res' spec.predictor runs as the 'default' service account."),
    (kubernetes_core_pod_no_privileged, INFERENCE_SERVICE, ISVC, f"{CONTAINER}.securityContext.privileged", True,
     "InferenceService 'res' container at spec.predictor.model is privileged."),
    (kubernetes_core_pod_no_privileged, RUNTIME, SERVING_RUNTIME,
     "spec.containers.0.securityContext.allowPrivilegeEscalation", True,
     "ClusterServingRuntime 'res' container at spec.containers[0] sets allowPrivilegeEscalation true."),
    (kubernetes_core_pod_no_host_path, DEPLOYMENT, DEPLOY, "spec.template.spec.volumes.0",
     {"name": "docker", "hostPath": {"path": "/var/run/docker.sock"}},
     "Deployment 'res' mounts hostPath '/var/run/docker.sock' (volume 'docker' at spec.template.spec)."),
    (kubernetes_core_pod_no_host_namespaces, INFERENCE_SERVICE, ISVC, "spec.predictor.hostNetwork", True,
     "InferenceService 'res' sets hostNetwork true at spec.predictor."),
    (kubernetes_core_pod_no_host_namespaces, DEPLOYMENT, DEPLOY, "spec.template.spec.hostPID", True,
     "Deployment 'res' sets hostPID true at spec.template.spec."),
    (kubernetes_core_pod_no_added_capabilities, RUNTIME, SERVING_RUNTIME,
     "spec.containers.0.securityContext.capabilities.add", ["SYS_ADMIN", "NET_BIND_SERVICE"],
     "ClusterServingRuntime 'res' container at spec.containers[0] adds capabilities SYS_ADMIN."),
    (kubernetes_helm_release_pinned_version, RELEASE, HELM, "version", "~1.20.0",
     "Helm release 'res' (chart cert-manager) has version '~1.20.0'; pin an exact version."),
    (kubernetes_helm_release_pinned_version, RELEASE, HELM, "version", DELETE,
     "Helm release 'res' (chart cert-manager) has version ''; pin an exact version."),
    (kubernetes_helm_grafana_no_anonymous_access, RELEASE, PROM_STACK,
     "values.grafana.[grafana.ini].[auth.anonymous].enabled", True,
     "Grafana release 'res' enables anonymous access (grafana.ini auth.anonymous)."),
    (kubernetes_helm_grafana_no_default_password, RELEASE, PROM_STACK, "values.grafana.admin", DELETE,
     "Grafana release 'res' sets neither adminPassword nor admin.existingSecret; the chart default password "
     "applies."),
    (kubernetes_helm_grafana_no_default_password, RELEASE, GRAFANA, "values.adminPassword", "admin",
     "Grafana release 'res' uses the default admin password 'admin'."),
    (kubernetes_elastic_elasticsearch_tls, ELASTICSEARCH, ES, "spec.http.tls.selfSignedCertificate",
     {"disabled": True},
     "Elasticsearch 'res' disables TLS on HTTP (spec.http.tls.selfSignedCertificate.disabled is true)."),
]


@pytest.mark.parametrize(("policy", "resource_type", "baseline"),
                         list({(c[0].name, c[1], id(c[2])): c[:3] for c in CASES}.values()),
                         ids=lambda v: getattr(v, "name", None))
def test_baseline_passes(policy, resource_type, baseline) -> None:
    assert validate_resource(policy, resource_type, baseline) == []


@pytest.mark.parametrize(("policy", "resource_type", "baseline", "path", "value", "message"), CASES,
                         ids=[f"{c[0].name}:{c[3]}" for c in CASES])
def test_each_violation_is_reported(policy, resource_type, baseline, path, value, message) -> None:
    assert validate_resource(policy, resource_type, mutate(baseline, path, value)) == [message]


def test_grafana_policies_ignore_other_charts_and_pass_the_baseline_grafana_chart() -> None:
    for policy in (kubernetes_helm_grafana_no_anonymous_access, kubernetes_helm_grafana_no_default_password):
        assert validate_resource(policy, RELEASE, mutate(HELM, "values", {"adminPassword": "admin"})) == []
        assert validate_resource(policy, RELEASE, GRAFANA) == []


# --- stack policies over a team namespace --------------------------------------------------------------

QUOTA = {"metadata": {"name": "gpu", "namespace": "vision"},
         "spec": {"hard": {"requests.nvidia.com/gpu": "4", "requests.cpu": "64", "requests.memory": "256Gi"}}}
DENY = {"metadata": {"name": "default-deny-ingress", "namespace": "vision"},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}
PLATFORM_NS = mutate(NS, "metadata", {"name": "kserve", "labels": {"ai-platform.io/team": "platform"}})


def team(namespace=NS, quota=QUOTA, deny=DENY, isvc=ISVC) -> list:
    found = [resource(NAMESPACE, "ns", namespace), resource(NAMESPACE, "platform-ns", PLATFORM_NS)]
    found += [resource(RESOURCE_QUOTA, "quota", quota)] if quota else []
    found += [resource(NETWORK_POLICY, "deny", deny)] if deny else []
    return found + ([resource(INFERENCE_SERVICE, "digits", isvc)] if isvc else [])


STACK_POLICIES = [kubernetes_core_namespace_gpu_resource_quota, kubernetes_networking_namespace_default_deny,
                  kubernetes_kserve_inferenceservice_metrics_scrape]


@pytest.mark.parametrize("policy", STACK_POLICIES, ids=lambda p: p.name)
def test_team_baseline_passes(policy) -> None:
    assert validate_stack(policy, team()) == []


@pytest.mark.parametrize(("policy", "resources", "message"), [
    (kubernetes_core_namespace_gpu_resource_quota, team(quota=None), "Team namespace 'vision' has no ResourceQuota."),
    (kubernetes_core_namespace_gpu_resource_quota,
     team(quota=mutate(QUOTA, "spec.hard.[requests.nvidia.com/gpu]", DELETE)),
     "Team namespace 'vision' has no ResourceQuota with requests.nvidia.com/gpu."),
    (kubernetes_core_namespace_gpu_resource_quota, team(quota=mutate(QUOTA, "metadata.namespace", "search")),
     "Team namespace 'vision' has no ResourceQuota."),
    (kubernetes_networking_namespace_default_deny, team(deny=None),
     "Team namespace 'vision' has no default-deny ingress NetworkPolicy."),
    (kubernetes_networking_namespace_default_deny, team(deny=mutate(DENY, "spec.podSelector.matchLabels", {"a": "b"})),
     "Team namespace 'vision' has no default-deny ingress NetworkPolicy."),
    (kubernetes_networking_namespace_default_deny, team(deny=mutate(DENY, "spec.ingress", [{"from": []}])),
     "Team namespace 'vision' has no default-deny ingress NetworkPolicy."),
    (kubernetes_kserve_inferenceservice_metrics_scrape,
     team(isvc=mutate(ISVC, "spec.predictor.annotations", DELETE)),
     "InferenceService 'digits' in namespace 'vision' has no prometheus.io/scrape annotation and no "
     "PodMonitor/ServiceMonitor in its namespace."),
], ids=lambda v: v if isinstance(v, str) else None)
def test_team_violations(policy, resources, message) -> None:
    assert validate_stack(policy, resources) == [message]


def test_a_pod_monitor_in_the_namespace_counts_as_scraping() -> None:
    monitor = resource("kubernetes:monitoring.coreos.com/v1:PodMonitor", "pm",
                       {"metadata": {"name": "kserve", "namespace": "vision"}})
    resources = [*team(isvc=mutate(ISVC, "spec.predictor.annotations", DELETE)), monitor]
    assert validate_stack(kubernetes_kserve_inferenceservice_metrics_scrape, resources) == []


@pytest.mark.parametrize("namespace", [{}, ["vision"], None, 1.0], ids=repr)
def test_a_monitor_whose_namespace_is_no_name_monitors_nothing(namespace) -> None:
    # A map or a list here used to break the set of monitored namespaces (unhashable).
    monitor = resource("kubernetes:monitoring.coreos.com/v1:PodMonitor", "pm",
                       {"metadata": {"name": "kserve", "namespace": namespace}})
    resources = [*team(isvc=mutate(ISVC, "spec.predictor.annotations", DELETE)), monitor]
    assert validate_stack(kubernetes_kserve_inferenceservice_metrics_scrape, resources) == [
        "InferenceService 'digits' in namespace 'vision' has no prometheus.io/scrape annotation and no "
        "PodMonitor/ServiceMonitor in its namespace."]
