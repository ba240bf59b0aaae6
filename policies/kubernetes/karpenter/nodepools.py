"""What the Karpenter NodePool policies share: which NodePools carry GPUs, their instance types, labels and limits.

A NodePool (karpenter.sh/v1) says which nodes Karpenter may launch through ``spec.template.spec.requirements`` and
how much in total through ``spec.limits``; the labels its nodes get are ``spec.template.metadata.labels``
(https://karpenter.sh/docs/concepts/nodepools/).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.gpu_catalog import GPU_FAMILIES, gpus_per_instance
from policies.props import describe, get, is_mapping, items, quantity

NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
INSTANCE_TYPE = "node.kubernetes.io/instance-type"
INSTANCE_FAMILY = "karpenter.k8s.aws/instance-family"
CAPACITY_TYPE = "karpenter.sh/capacity-type"
GPU = "nvidia.com/gpu"
# The label every GPU pool's nodes carry (infra/components/gpu_node_pool.py gpu_labels).
ACCELERATOR_LABEL = "ai-platform.io/accelerator"
# Well-known labels Karpenter's AWS provider sets from the instance type's GPUs.
_GPU_REQUIREMENT_KEYS = ("karpenter.k8s.aws/instance-gpu-count", "karpenter.k8s.aws/instance-gpu-name",
                         "karpenter.k8s.aws/instance-gpu-manufacturer")


def template_labels(props: Any) -> Mapping[str, Any]:
    """The labels Karpenter puts on the NodePool's nodes."""
    labels = get(props, "spec", "template", "metadata", "labels")
    return labels if is_mapping(labels) else {}


def requirements(props: Any, key: str) -> list[Any]:
    """The NodePool's requirements on one label key (Karpenter intersects them all)."""
    return [r for r in items(get(props, "spec", "template", "spec", "requirements")) if get(r, "key") == key]


def admitted_values(props: Any, key: str) -> set[str] | None:
    """The values the ``In`` requirements on ``key`` admit together; None where no ``In`` requirement names any."""
    admitted: set[str] | None = None
    for requirement in requirements(props, key):
        if get(requirement, "operator") == "In":
            values = {str(v) for v in items(get(requirement, "values"))}
            admitted = values if admitted is None else admitted & values
    if admitted is not None:
        for requirement in requirements(props, key):
            if get(requirement, "operator") == "NotIn":
                admitted -= {str(v) for v in items(get(requirement, "values"))}
    return admitted


def instance_types(props: Any) -> list[str]:
    """The instance types a NodePool may launch, where its requirements list them (``In``); empty otherwise."""
    return sorted(admitted_values(props, INSTANCE_TYPE) or ())


def is_gpu_node_pool(props: Any) -> bool:
    """A NodePool that may launch GPU nodes: labelled as an NVIDIA pool, or asking for GPU instance types or GPUs."""
    if get(template_labels(props), ACCELERATOR_LABEL) == "nvidia":
        return True
    if any(gpus_per_instance(t) for t in instance_types(props)):
        return True
    if set(admitted_values(props, INSTANCE_FAMILY) or ()) & set(GPU_FAMILIES):
        return True
    return any(requirements(props, key) for key in _GPU_REQUIREMENT_KEYS)


def limit(props: Any, resource: str) -> float | None:
    """``spec.limits[resource]`` as a number (quantities may arrive as strings, ``"8"``); None where not set, or
    not a quantity of 0 or more (``limit_problems`` says which)."""
    value = quantity(get(props, "spec", "limits", resource))
    return value if value is not None and value >= 0 else None


def limit_problems(props: Any, resources: tuple[str, ...] | None = None) -> list[str]:
    """What is wrong with ``spec.limits`` (with the entries for ``resources``, or every entry), which Karpenter
    would refuse; empty when nothing is."""
    limits = get(props, "spec", "limits")
    if limits is None:
        return []
    if not is_mapping(limits):
        return [f"has spec.limits '{describe(limits)}', not a map of resource names to quantities"]
    return [f"has spec.limits[\"{name}\"] '{describe(limits[name])}', not a quantity of 0 or more"
            for name in sorted(str(n) for n in limits)
            if (resources is None or name in resources) and get(limits, name) is not None
            and limit(props, name) is None]


def gpus_per_node(props: Any) -> tuple[int, int] | None:
    """(fewest, most) GPUs of one node of the NodePool; None where its instance types are not listed or not known."""
    types = instance_types(props)
    counts = [gpus_per_instance(t) for t in types]
    if not types or not all(counts):
        return None
    return min(counts), max(counts)
