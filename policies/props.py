"""Reading engine-side properties safely.

At run time the engine hands policies read-only proxies (``pulumi_policy.proxy``): they are ``Mapping``
and ``Sequence`` but not ``dict``/``list``, numbers arrive as floats (protobuf ``Struct``), and booleans
the provider takes as strings (``encrypted: "true"``) stay strings. Everything here copes with all of
that and never mutates what it reads.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any


def is_mapping(value: Any) -> bool:
    return isinstance(value, Mapping)


def is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def get(value: Any, *path: str | int, default: Any = None) -> Any:
    """``value[path[0]][path[1]]...``, or ``default`` where any step is missing or of the wrong shape."""
    for key in path:
        if isinstance(key, int):
            if not is_list(value) or not -len(value) <= key < len(value):
                return default
            value = value[key]
        else:
            if not is_mapping(value) or key not in value:
                return default
            value = value[key]
        if value is None:
            return default
    return value


def items(value: Any) -> list[Any]:
    """The elements of a list property (empty when absent or not a list)."""
    return list(value) if is_list(value) else []


def truthy(value: Any) -> bool:
    """A boolean property that may arrive as ``True`` or ``"true"``."""
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return value is True


def number(value: Any, default: float = 0) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


# Suffixes of a Kubernetes quantity (https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/quantity/).
_QUANTITY_SUFFIXES = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
                      "n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}


def quantity(value: Any) -> float | None:
    """A Kubernetes quantity (``8``, ``"8"``, ``"500m"``, ``"1Gi"``) as a number; None when absent or not one."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    text, scale = str(value).strip(), 1.0
    for suffix in sorted(_QUANTITY_SUFFIXES, key=len, reverse=True):
        if text.endswith(suffix) and text[:-len(suffix)]:
            text, scale = text[:-len(suffix)], _QUANTITY_SUFFIXES[suffix]
            break
    try:
        number = float(text) * scale
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def walk_strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every string inside a property value, with its dotted path."""
    if isinstance(value, str):
        yield path, value
    elif is_mapping(value):
        for key in value:
            yield from walk_strings(value[key], f"{path}.{key}" if path else str(key))
    elif is_list(value):
        for index, element in enumerate(value):
            yield from walk_strings(element, f"{path}[{index}]")


def config_value(args: Any, key: str, default: Any) -> Any:
    """A policy's config value (the pack config file), or its default when not configured."""
    config = args.get_config() if hasattr(args, "get_config") else {}
    value = config.get(key) if is_mapping(config) else None
    return default if value is None else value
