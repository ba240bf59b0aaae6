"""Reading engine-side properties safely.

At run time the engine hands policies read-only proxies (``pulumi_policy.proxy``): they are ``Mapping``
and ``Sequence`` but not ``dict``/``list``, numbers arrive as floats (protobuf ``Struct``), and booleans
the provider takes as strings (``encrypted: "true"``) stay strings. Everything here copes with all of
that and never mutates what it reads.
"""

from __future__ import annotations

import json
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
    """A finite number, from a number or a numeric string; ``default`` for anything else.

    Booleans, NaN and infinities are refused too: NaN compares false both ways, so it would slip past every
    bound a policy checks, and ``int()`` of either non-finite value raises.
    """
    if isinstance(value, bool):
        return default
    try:
        result = float(value)
    except (TypeError, ValueError, OverflowError):
        return default
    return result if math.isfinite(result) else default


def count(value: Any) -> int | None:
    """A count (replicas, nodes, GPU slices): a whole number >= 0, as a number (``3.0``) or digits (``"3"``).

    None for anything else: a fraction, a negative, a quantity with a unit (``"4Gi"``), words, NaN, a boolean.
    """
    if isinstance(value, str):
        text = value.strip()
        # str.isdigit() also takes digits such as "²" that int() refuses.
        return int(text) if text.isascii() and text.isdigit() else None
    result = number(value, default=-1)
    return int(result) if result >= 0 and result.is_integer() else None


def describe(value: Any) -> str:
    """A property value as a message shows it: a string as it is, anything else as JSON (``null``, ``{}``)."""
    if isinstance(value, str):
        return value
    return json.dumps(_plain(value), default=repr)


def _plain(value: Any) -> Any:
    if is_mapping(value):
        return {str(key): _plain(value[key]) for key in value}
    if is_list(value):
        return [_plain(element) for element in value]
    return value


# Suffixes of a Kubernetes quantity (https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/quantity/).
_QUANTITY_SUFFIXES = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
                      "n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}


def quantity(value: Any) -> float | None:
    """A Kubernetes quantity (``8``, ``"8"``, ``"500m"``, ``"1Gi"``) as a number; None when absent or not one."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        result = number(value, default=math.nan)
        return None if math.isnan(result) else result
    if not isinstance(value, str):
        return None
    text, scale = value.strip(), 1.0
    for suffix in sorted(_QUANTITY_SUFFIXES, key=len, reverse=True):
        if text.endswith(suffix) and text[:-len(suffix)]:
            text, scale = text[:-len(suffix)], _QUANTITY_SUFFIXES[suffix]
            break
    try:
        result = float(text) * scale
    except (ValueError, OverflowError):
        return None
    return result if math.isfinite(result) else None


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
