"""Checks of single JSON values; each failure names the value's path and what was expected.

Paths read like the request they point into: ``instances[1]``, ``instances[1][3]``, ``instances[0].k``.
The checks are strict on purpose: a JSON boolean is not a number (Python's ``bool`` is an ``int``, so it
must be excluded by hand), a string of digits is not a number, and NaN or infinity (which Python's
``json`` module accepts as ``NaN`` / ``Infinity``) are refused where a finite number is expected.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from aip_serving.errors import InputError

# A key is quoted back to the client, so a 150 KB key must not make a 150 KB message (or status line).
MAX_QUOTED_KEY = 64
MAX_QUOTED_KEYS = 5


def json_type(value: Any) -> str:
    """The JSON name of a decoded value's type, for messages ("got string")."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, (str, bytes, bytearray)):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, (list, tuple)):
        return "array"
    return type(value).__name__


def quoted_key(key: object) -> str:
    """A client-supplied key in double quotes, cut to :data:`MAX_QUOTED_KEY` characters ("…" marks a cut)."""
    text = str(key)
    if len(text) > MAX_QUOTED_KEY:
        text = text[:MAX_QUOTED_KEY] + "\u2026"
    return f'"{text}"'


def quoted_keys(keys: Sequence[object]) -> str:
    """The first :data:`MAX_QUOTED_KEYS` keys, each quoted and cut, then how many more there are."""
    names = ", ".join(quoted_key(key) for key in keys[:MAX_QUOTED_KEYS])
    hidden = len(keys) - MAX_QUOTED_KEYS
    return f"{names} and {hidden} more" if hidden > 0 else names


def format_number(value: float) -> str:
    """A number as JSON would spell it, with JavaScript's names for the non-finite ones."""
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        if value.is_integer() and abs(value) < 1e16:
            return str(int(value))
    return repr(value)


def finite_number(path: str, value: Any, *, low: float, high: float) -> float:
    """A finite number in ``[low, high]``, as a float.

    Raises:
        InputError: ``"<path>: expected a number, got string"``, ``"... expected a finite number, got NaN"``
            or ``"... expected a value in [0, 16], got 17"``.
    """
    # type() rather than isinstance(): bool is a subclass of int and must not pass.
    if type(value) is not float and type(value) is not int:
        raise InputError(f"{path}: expected a number, got {json_type(value)}")
    if type(value) is float and not math.isfinite(value):
        raise InputError(f"{path}: expected a finite number, got {format_number(value)}")
    if not low <= value <= high:
        raise InputError(
            f"{path}: expected a value in [{format_number(low)}, {format_number(high)}], got {format_number(value)}"
        )
    return float(value)


def finite_numbers(path: str, values: Sequence[Any], *, low: float, high: float) -> list[float]:
    """Every element a finite number in ``[low, high]``; a failure names the element (``<path>[5]``).

    Checks in one tight loop and builds element paths only for the failing element: a batch of
    images is thousands of values.
    """
    numbers: list[float] = []
    for value in values:
        if (type(value) is int or (type(value) is float and math.isfinite(value))) and low <= value <= high:
            numbers.append(float(value))
        else:  # raises with the precise reason
            numbers.append(finite_number(f"{path}[{len(numbers)}]", value, low=low, high=high))
    return numbers


def integer(path: str, value: Any, *, low: int | None = None, high: int | None = None) -> int:
    """An integer (not a boolean, not a float such as ``3.0``), optionally within ``[low, high]``.

    Raises:
        InputError: ``"<path>: expected an integer, got string"`` or
            ``"<path>: expected an integer in [1, 100], got 0"``.
    """
    if type(value) is not int:
        kind = json_type(value)
        if kind == "number":
            kind = f"number {format_number(value)}"
        raise InputError(f"{path}: expected an integer, got {kind}")
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"[{low if low is not None else '-inf'}, {high if high is not None else 'inf'}]"
        raise InputError(f"{path}: expected an integer in {bounds}, got {value}")
    return value


def boolean(path: str, value: Any) -> bool:
    """A JSON boolean; ``0``/``1`` and ``"true"`` are refused rather than guessed at."""
    if type(value) is not bool:
        raise InputError(f"{path}: expected true or false, got {json_type(value)}")
    return value


def json_object(
    path: str,
    value: Any,
    *,
    required: Collection[str],
    optional: Collection[str] = (),
    example: str,
) -> Mapping[str, Any]:
    """A JSON object with all ``required`` fields and no field outside ``required`` and ``optional``.

    Args:
        path: Where the object is, for messages.
        value: The decoded value.
        required: Fields that must be present.
        optional: Fields that may be present.
        example: A short valid example shown when the value is not an object at all.

    Raises:
        InputError: Naming the first problem found: not an object, an unknown field, a missing field.
    """
    if not isinstance(value, Mapping):
        raise InputError(f"{path}: expected an object like {example}, got {json_type(value)}")
    allowed = set(required) | set(optional)
    unknown = sorted(str(key) for key in value if key not in allowed)
    if unknown:
        names = quoted_keys(unknown)
        raise InputError(
            f"{path}: unknown field{'s' if len(unknown) > 1 else ''} {names} (allowed: {', '.join(sorted(allowed))})"
        )
    missing = [key for key in required if key not in value]
    if missing:
        names = ", ".join(f'"{key}"' for key in missing)
        raise InputError(f"{path}: missing {names}")
    return value
