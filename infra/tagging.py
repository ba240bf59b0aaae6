"""Required tags on every taggable AWS resource and matching labels on every Kubernetes object.

Applied once, as a stack transformation, so no call site can forget them and tags stay visible in
each resource's inputs (where the policy pack and `aip preview` can see them).
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Mapping
from typing import Any

import pulumi

LABEL_PREFIX = "ai-platform.io/"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
_LABEL_VALUE = re.compile(r"[^A-Za-z0-9_.-]")


def k8s_labels(tags: Mapping[str, str]) -> dict[str, str]:
    """Kubernetes labels that mirror the required tags (values made label-safe)."""
    labels = {LABEL_PREFIX + key: _LABEL_VALUE.sub("-", value)[:63].strip("-_.") for key, value in tags.items()}
    labels["app.kubernetes.io/managed-by"] = "pulumi"
    return labels


# Tags that say who owns a resource. The platform creates some resources on a team's behalf (its namespace, its
# serving role): those carry the team's own values, set explicitly, instead of the platform's.
OWNER_TAGS = ("team", "cost-center")


def _merged(current: Mapping[str, str] | None, required: Mapping[str, str], owner_keys: tuple[str, ...]) -> dict:
    current = dict(current or {})
    return {**current, **{k: v for k, v in required.items() if k not in owner_keys or k not in current}}


def merge_required(existing: Any, required: Mapping[str, str], owner_keys: tuple[str, ...] = ()) -> Any:
    """Merge ``required`` over ``existing`` (a dict, an Output of one, or None).

    Required keys win, except ``owner_keys`` that ``existing`` already sets.
    """
    if isinstance(existing, pulumi.Output):
        return existing.apply(lambda current: _merged(current, required, owner_keys))
    return _merged(existing, required, owner_keys)


@functools.cache
def is_taggable(resource_class: type) -> bool:
    """True when the resource takes a ``tags`` map (not, e.g., an autoscaling group's tag list)."""
    init = getattr(resource_class, "_internal_init", None)
    if init is None:
        return False
    parameter = inspect.signature(init).parameters.get("tags")
    return parameter is not None and "Mapping[str" in str(parameter.annotation)


def register_tagging(tags: Mapping[str, str]) -> None:
    """Tag every AWS resource and label every Kubernetes object registered after this call."""
    tags = dict(tags)
    labels = k8s_labels(tags)
    owner_labels = tuple(LABEL_PREFIX + key for key in OWNER_TAGS)

    def transform(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
        props = dict(args.props)
        if args.type_.startswith("aws:") and is_taggable(type(args.resource)):
            props["tags"] = merge_required(props.get("tags"), tags, OWNER_TAGS)
            if args.type_ == LAUNCH_TEMPLATE and not props.get("tag_specifications"):
                # Instances and volumes that node groups launch are tagged too, not only the template.
                props["tag_specifications"] = [{"resource_type": kind, "tags": tags}
                                               for kind in ("instance", "volume", "network-interface")]
        elif args.type_.startswith("kubernetes:") and isinstance(props.get("metadata"), dict):
            metadata = dict(props["metadata"])
            metadata["labels"] = merge_required(metadata.get("labels"), labels, owner_labels)
            props["metadata"] = metadata
        else:
            return None
        return pulumi.ResourceTransformationResult(props, args.opts)

    pulumi.runtime.register_stack_transformation(transform)
