"""Checks of v2 input tensors, vectorised: each failure names the tensor, the row and what was expected.

A v2 request's inputs arrive as numpy arrays (the binary tensor extension sends them as raw bytes).
Checking them value by value, as :mod:`aip_serving.checks` does for JSON, would first turn every value
into a Python object; these checks look at a whole array at once and only build a message, for the
first bad element of each bad row, when something is wrong. Messages read like the v1 ones, with the
tensor's name and row in place of ``instances[i]``:
``input "image" row 3, element [12]: expected a value in [0, 16], got 17``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Callable

import numpy as np

from aip_serving.checks import format_number, quoted_key
from aip_serving.errors import InputError

# numpy's kind codes: signed and unsigned integers, floats.
INTEGER_KINDS = "iu"
NUMBER_KINDS = "iuf"


def v2_datatype(dtype: np.dtype[Any]) -> str:
    """The v2 name of a numpy dtype as a client sent it (``FP32``, ``INT64``, ``BOOL``, ``BYTES``)."""
    bits = dtype.itemsize * 8
    names = {"b": "BOOL", "i": f"INT{bits}", "u": f"UINT{bits}", "f": f"FP{bits}"}
    return names.get(dtype.kind, "BYTES" if dtype.kind in "OSU" else dtype.name)


def check_input_names(tensors: Mapping[str, Any], inputs: Mapping[str, str], *, required: Collection[str]) -> None:
    """Refuse an input the model does not know and a missing required one.

    Args:
        tensors: The request's inputs by name.
        inputs: Every input the model knows, each with a short description for messages.
        required: The inputs a request must send.

    Raises:
        InputError: ``unknown input "pixels" (expected: image)`` or ``missing input "image" (...)``.
    """
    unknown = sorted(set(tensors) - set(inputs))
    if unknown:
        raise InputError(f"unknown input {quoted_key(unknown[0])} (expected: {', '.join(inputs)})")
    for name in required:
        if name not in tensors:
            raise InputError(f'missing input "{name}" ({inputs[name]})')


def check_kind(name: str, array: np.ndarray, kinds: str, expected: str) -> None:
    """Refuse a tensor whose datatype is not of one of numpy's ``kinds`` (``"iuf"``: any number).

    Raises:
        InputError: ``input "image": expected numbers (FP32, ...), got BOOL``.
    """
    if array.dtype.kind not in kinds:
        raise InputError(f'input "{name}": expected {expected}, got {v2_datatype(array.dtype)}')


def check_rows(name: str, rows: int, limit: int) -> None:
    """Refuse a tensor without rows, and one with more rows than a request may carry.

    Raises:
        InputError: ``input "image" has 65 rows, more than the limit of 64 per request``.
    """
    if rows == 0:
        raise InputError(f'input "{name}" has no rows: send at least one')
    if rows > limit:
        raise InputError(f'input "{name}" has {rows} rows, more than the limit of {limit} per request')


def row_problems(name: str, array: np.ndarray, ok: np.ndarray, reason: Callable[[Any], str]) -> list[str]:
    """One message per row of ``array`` where ``ok`` (same shape, boolean) is false somewhere.

    Each names the row, the first bad element within the row (for tensors of two or more dimensions),
    and ``reason(value)`` for that element's value (a Python number).
    """
    rows = ok.reshape(len(ok), -1)
    values = array.reshape(len(array), -1)
    problems = []
    for row in np.flatnonzero(~rows.all(axis=1)).tolist():
        column = int(np.argmin(rows[row]))
        where = f'input "{name}" row {row}'
        if array.ndim > 1:
            element = ", ".join(str(int(i)) for i in np.unravel_index(column, array.shape[1:]))
            where += f", element [{element}]"
        problems.append(f"{where}: {reason(values[row, column].item())}")
    return problems


def check_values(name: str, array: np.ndarray, *, low: float, high: float) -> None:
    """Every element a finite number in ``[low, high]`` (a numeric tensor: see :func:`check_kind`).

    Raises:
        InputError: One problem per bad row (the first few listed, the rest counted), for example
            ``input "image" row 0, element [5]: expected a finite number, got NaN``.
    """
    if array.size == 0:
        return
    # The common case costs two reductions; NaN fails both comparisons, so it takes the slow path too.
    if low <= array.min() and array.max() <= high:
        return
    with np.errstate(invalid="ignore"):
        ok = (array >= low) & (array <= high)

    def reason(value: Any) -> str:
        if isinstance(value, float) and not np.isfinite(value):
            return f"expected a finite number, got {format_number(value)}"
        return f"expected a value in [{format_number(low)}, {format_number(high)}], got {format_number(value)}"

    raise InputError.from_problems(row_problems(name, array, ok, reason))


def one_or_per_row(name: str, array: np.ndarray, rows: int, what: str) -> np.ndarray:
    """An input given once for every row or once per row, as a vector of ``rows`` values.

    Raises:
        InputError: ``input "k": expected 1 or 3 values (one per user), got 2``.
    """
    values = array.reshape(-1)
    if values.size == 1:
        return np.broadcast_to(values, (rows,))
    if values.size != rows:
        raise InputError(f'input "{name}": expected 1 or {rows} values (one per {what}), got {values.size}')
    return values
