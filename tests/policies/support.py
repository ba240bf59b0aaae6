"""Calling policies the way the engine does: props in read-only unknown-checking proxies, config per policy."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from pulumi_policy import (
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import unknown_checking_proxy

DELETE = object()


def options() -> PolicyResourceOptions:
    return PolicyResourceOptions(False, [], False, [], None, [])


def urn_of(resource_type: str, name: str, stack: str = "test") -> str:
    return f"urn:pulumi:{stack}::ai-platform::{resource_type}::{name}"


def engine_props(props: Mapping[str, Any]) -> Any:
    """A deep copy in the engine's read-only proxy: a policy that writes to it would change only the copy."""
    return unknown_checking_proxy(copy.deepcopy(dict(props)))


def validate_resource(policy: ResourceValidationPolicy, resource_type: str, props: Mapping[str, Any],
                      name: str = "res", config: Mapping[str, Any] | None = None) -> list[str]:
    """The messages ``policy`` reports for one resource."""
    messages: list[str] = []
    args = ResourceValidationArgs(resource_type, engine_props(props), urn_of(resource_type, name), name, options(),
                                  None, dict(config or {}))
    policy.validate(args, lambda message, urn=None: messages.append(message))
    return messages


def resource(resource_type: str, name: str, props: Mapping[str, Any], stack: str = "test") -> PolicyResource:
    return PolicyResource(resource_type, engine_props(props), urn_of(resource_type, name, stack), name, options(),
                          None, None, [], {})


def validate_stack(policy: StackValidationPolicy, resources: list[PolicyResource],
                   config: Mapping[str, Any] | None = None) -> list[str]:
    """The messages ``policy`` reports for a whole stack."""
    messages: list[str] = []
    policy.validate(StackValidationArgs(resources, dict(config or {})),
                    lambda message, urn=None: messages.append(message))
    return messages


def mutate(base: Mapping[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``base`` with the dotted ``path`` set to ``value`` (or removed, for DELETE).

    Path segments that are digits index lists; a segment may be quoted with [..] to contain dots.
    """
    result = copy.deepcopy(dict(base))
    keys = _split(path)
    target: Any = result
    for key in keys[:-1]:
        target = target[int(key)] if isinstance(target, list) else target.setdefault(key, {})
    last = keys[-1]
    if isinstance(target, list):
        target[int(last)] = value
    elif value is DELETE:
        target.pop(last, None)
    else:
        target[last] = value
    return result


def _split(path: str) -> list[str]:
    keys, buffer, quoted = [], "", False
    for char in path:
        if char == "[" and not buffer:
            quoted = True
        elif char == "]" and quoted:
            quoted = False
        elif char == "." and not quoted:
            keys.append(buffer)
            buffer = ""
        else:
            buffer += char
    keys.append(buffer)
    return keys
