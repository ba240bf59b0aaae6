"""KServe in Standard (raw Deployment) mode, cert-manager for its webhooks, and the TorchServe runtime."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.components.pod_security import restricted_security_context
from infra.helm import release_args
from infra.serving.config_properties import (
    CLUSTER_INFERENCE_PORT,
    CLUSTER_METRICS_PORT,
    CONFIG_PATH,
    MODEL_STORE,
    TORCHSERVE_PROTOCOLS,
)
from infra.versions import CERT_MANAGER, KSERVE, KSERVE_CRD, METRICS_SERVER, TORCHSERVE_RUNTIME

KSERVE_NAMESPACE = "kserve"
CERT_MANAGER_NAMESPACE = "cert-manager"


def cert_manager_values() -> dict[str, Any]:
    """CRDs installed and kept on uninstall (deleting them would delete every Certificate).

    https://cert-manager.io/docs/installation/helm/#crd-considerations
    """
    return {"crds": {"enabled": True, "keep": True},
            "global": {"leaderElection": {"namespace": CERT_MANAGER_NAMESPACE}}}


def kserve_values(region: str) -> dict[str, Any]:
    """Standard mode, no Istio, no public ingress: predictors are reachable inside the cluster only.

    The controller runs one replica (the chart has no replicas key), so it gets no disruption budget, which
    would block node drains, and no zone spread (infra/components/failover.py). While it is rescheduled,
    predictors keep serving (they are plain Deployments and Services); only changes to InferenceServices
    wait for it.
    https://github.com/kserve/kserve/blob/v0.20.0/charts/kserve-resources/values.yaml
    """
    return {"kserve": {
        "controller": {
            "deploymentMode": "Standard",
            "gateway": {"disableIstioVirtualHost": True, "disableIngressCreation": True},
        },
        "storage": {"s3": {"region": region, "useHttps": "1", "verifySSL": "1", "useAnonymousCredential": "false"}},
    }}


def torchserve_runtime_spec() -> dict[str, Any]:
    """The platform's TorchServe runtime: a pinned 0.12 image, non-root, no capabilities.

    Unlike KServe's kserve-torchserve runtime it runs TorchServe itself, not the image's KServe
    wrapper: the wrapper answers every client error with a 500 and re-encodes bodies. TorchServe
    serves KServe's v1 route (`/v1/models/<m>:predict`) on the predictor port directly.

    Worker settings belong in config.properties, not in this container's env: the frontend writes
    TS_DECODE_INPUT_REQUEST into each worker's environment from `decode_input_request`, over any value
    set here (infra/serving/config_properties.py). Other variables (OMP_NUM_THREADS...) do reach the workers.

    Draining is per model, sized to its response timeout: each InferenceService sets the preStop hook on
    this container (merged over it) and the pod's grace period (inference_service.predictor_spec).
    """
    probe = {"httpGet": {"path": "/ping", "port": CLUSTER_INFERENCE_PORT}, "periodSeconds": 10,
             "timeoutSeconds": 5}
    return {
        "annotations": {"prometheus.kserve.io/port": str(CLUSTER_METRICS_PORT),
                        "prometheus.kserve.io/path": "/metrics"},
        "supportedModelFormats": [{"name": "pytorch", "version": "1", "autoSelect": False}],
        "protocolVersions": list(TORCHSERVE_PROTOCOLS),
        "containers": [{
            "name": "kserve-container",
            "image": f"{TORCHSERVE_RUNTIME.image}:{TORCHSERVE_RUNTIME.tag}",
            "command": ["torchserve"],
            "args": ["--start", "--foreground", f"--model-store={MODEL_STORE}", f"--ts-config={CONFIG_PATH}"],
            "ports": [{"name": "http", "containerPort": CLUSTER_INFERENCE_PORT, "protocol": "TCP"},
                      {"name": "metrics", "containerPort": CLUSTER_METRICS_PORT, "protocol": "TCP"}],
            "readinessProbe": probe,
            "livenessProbe": {**probe, "initialDelaySeconds": 60, "failureThreshold": 6},
            "securityContext": {**restricted_security_context(), "runAsUser": 1000},
            "resources": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "1", "memory": "2Gi"}},
        }],
    }


@dataclass(frozen=True)
class KServeArgs:
    """Args of :class:`KServe`.

    Attributes:
        region: AWS region of the model store (the storage initializer's S3 region).
        provider: Kubernetes provider of the cluster.
    """

    region: str
    provider: k8s.Provider


class KServe(pulumi.ComponentResource):
    """cert-manager, metrics-server, KServe's CRDs and controller as pinned Helm releases, and the
    TorchServe runtime."""

    runtime_name: str

    def __init__(self, name: str, args: KServeArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("ai-platform:serving:KServe", name, None, opts)
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=args.provider)
        cert_manager = k8s.helm.v3.Release(
            f"{name}-cert-manager", name="cert-manager", namespace=CERT_MANAGER_NAMESPACE, create_namespace=True,
            values=cert_manager_values(), atomic=True, opts=k8s_opts, **release_args(CERT_MANAGER))
        crds = k8s.helm.v3.Release(
            f"{name}-crds", name="kserve-crd", namespace=KSERVE_NAMESPACE, create_namespace=True, atomic=True,
            opts=k8s_opts, **release_args(KSERVE_CRD))
        # KServe's Standard mode scales predictors with HPAs, which read resource metrics from here.
        k8s.helm.v3.Release(
            f"{name}-metrics-server", name="metrics-server", namespace="kube-system", atomic=True,
            values={"priorityClassName": "system-cluster-critical"}, opts=k8s_opts, **release_args(METRICS_SERVER))
        controller = k8s.helm.v3.Release(
            f"{name}-controller", name="kserve", namespace=KSERVE_NAMESPACE, values=kserve_values(args.region),
            atomic=True, opts=pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(
                depends_on=[cert_manager, crds])),
            **release_args(KSERVE))
        k8s.apiextensions.CustomResource(
            f"{name}-torchserve-runtime",
            api_version="serving.kserve.io/v1alpha1",
            kind="ClusterServingRuntime",
            metadata={"name": TORCHSERVE_RUNTIME.name},
            spec=torchserve_runtime_spec(),
            opts=pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(depends_on=[controller])),
        )
        self.runtime_name = TORCHSERVE_RUNTIME.name
        self.register_outputs({"runtime_name": self.runtime_name})
