"""Finding pod specs and containers in any Kubernetes workload, KServe objects included."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from policies.props import get, is_mapping, items

INFERENCE_SERVICE = "kubernetes:serving.kserve.io/v1beta1:InferenceService"
SERVING_RUNTIMES = ("kubernetes:serving.kserve.io/v1alpha1:ClusterServingRuntime",
                    "kubernetes:serving.kserve.io/v1alpha1:ServingRuntime")
_TEMPLATED = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "ReplicationController")
_ISVC_COMPONENTS = ("predictor", "transformer", "explainer")
_CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")
# An InferenceService predictor names its one container by model framework (or `model`).
_ISVC_CONTAINER_KEYS = ("model", "pytorch", "sklearn", "xgboost", "tensorflow", "onnx", "triton", "huggingface",
                        "lightgbm", "paddle", "pmml")


def pod_specs(resource_type: str, props: Any) -> Iterator[tuple[str, Any]]:
    """(path, pod spec) for every pod template ``props`` carries; nothing for non-workloads."""
    if not resource_type.startswith("kubernetes:"):
        return
    kind = resource_type.rsplit(":", 1)[-1]
    if kind == "Pod":
        yield "spec", get(props, "spec", default={})
    elif kind in _TEMPLATED:
        yield "spec.template.spec", get(props, "spec", "template", "spec", default={})
    elif kind == "CronJob":
        yield "spec.jobTemplate.spec.template.spec", get(props, "spec", "jobTemplate", "spec", "template", "spec",
                                                         default={})
    elif resource_type in SERVING_RUNTIMES:
        yield "spec", get(props, "spec", default={})
    elif resource_type == INFERENCE_SERVICE:
        for component in _ISVC_COMPONENTS:
            spec = get(props, "spec", component)
            if is_mapping(spec):
                yield f"spec.{component}", spec


def containers(pod_path: str, pod_spec: Any) -> Iterator[tuple[str, Any]]:
    """(path, container) for every container of a pod spec (InferenceService framework keys included)."""
    for key in _CONTAINER_LISTS:
        for index, container in enumerate(items(get(pod_spec, key))):
            yield f"{pod_path}.{key}[{index}]", container
    for key in _ISVC_CONTAINER_KEYS:
        container = get(pod_spec, key)
        if is_mapping(container):
            yield f"{pod_path}.{key}", container


def all_containers(resource_type: str, props: Any) -> Iterator[tuple[str, Any]]:
    for pod_path, pod_spec in pod_specs(resource_type, props):
        yield from containers(pod_path, pod_spec)


def resource_label(resource_type: str, name: str) -> str:
    return f"{resource_type.rsplit(':', 1)[-1]} '{name}'"
