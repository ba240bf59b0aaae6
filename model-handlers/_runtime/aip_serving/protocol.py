"""The KServe v1 request body, ``{"instances": [...]}``, as both runtimes receive it.

A body reaches a model in several shapes: the platform's TorchServe (``decode_input_request=false``)
hands over a ``bytearray`` whatever the content type; a stock TorchServe hands over a ``dict`` when the
client said ``Content-Type: application/json``, a ``str`` for ``text/*`` and a ``bytearray`` otherwise;
KServe hands over a ``dict``, or ``bytes`` for a ``text/*`` body. :func:`read_instances` accepts all of
them and answers a bad body with an :class:`~aip_serving.errors.InputError`, never a server error.

Bytes and text are parsed with orjson where it is installed (it comes with KServe; the TorchServe image
may lack it), 4 to 8 times faster than ``json`` on large bodies. A body orjson refuses is parsed
again by ``json``, so a bad body gets the same message either way, and the values orjson refuses but
``json`` reads (``NaN``, ``Infinity``, lone surrogates) still reach the checks that name them. One
difference remains, shared with the KServe runtime (KServe decodes with orjson): an integer outside the
64-bit range becomes a float.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from aip_serving.checks import json_type, quoted_keys
from aip_serving.errors import InputError

try:
    import orjson
except ImportError:  # pragma: no cover - depends on the image
    orjson = None  # type: ignore[assignment]

INSTANCES = "instances"
PREDICTIONS = "predictions"
EXAMPLE_BODY = '{"instances": [...]}'


def decode_body(body: Any) -> Any:
    """The JSON value of a body: bytes and text are parsed, anything else is taken as already decoded.

    Raises:
        InputError: The body is empty, not UTF-8, not JSON, nested too deeply to parse, or holds a value
            Python refuses to build (an integer of more than 4,300 digits raises a plain ``ValueError``).
    """
    if orjson is not None and isinstance(body, (bytes, bytearray, memoryview, str)):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass  # json below reads what orjson refuses, or words the problem as clients have always seen it
    if isinstance(body, (bytes, bytearray, memoryview)):
        try:
            body = bytes(body).decode("utf-8")
        except UnicodeDecodeError as err:
            raise InputError(f"request body is not UTF-8 text (invalid byte at position {err.start})") from None
    if not isinstance(body, str):
        return body
    if not body.strip():
        raise InputError(f"request body is empty: send {EXAMPLE_BODY}")
    try:
        return json.loads(body)
    except json.JSONDecodeError as err:
        raise InputError(f"request body is not valid JSON: {err.msg} at line {err.lineno} column {err.colno}") from None
    except RecursionError:
        raise InputError("request body is nested too deeply to parse") from None
    except UnicodeDecodeError:  # a ValueError too; only reachable for text that is not valid Unicode
        raise InputError("request body is not valid UTF-8 text") from None
    except ValueError as err:
        # Not a JSONDecodeError: json built a value Python refuses, such as an integer of more than
        # sys.get_int_max_str_digits() digits. The message may quote the input, so it is not echoed.
        raise InputError(
            f"request body is not valid JSON here: a value is out of range ({type(err).__name__}; "
            "integers may have at most 4300 digits)"
        ) from None


def read_instances(body: Any) -> list[Any]:
    """The ``instances`` of a v1 body, checked for shape but not yet for content.

    Raises:
        InputError: Not a JSON object, no ``instances``, an unknown top-level field, or ``instances`` not
            an array. The number of instances is checked by the model core, which knows its limit.
    """
    value = decode_body(body)
    if not isinstance(value, Mapping):
        raise InputError(f"request body must be a JSON object like {EXAMPLE_BODY}, got {json_type(value)}")
    unknown = sorted(str(key) for key in value if key != INSTANCES)
    if unknown:
        names = quoted_keys(unknown)
        raise InputError(
            f"unknown top-level field{'s' if len(unknown) > 1 else ''} {names} (allowed: {INSTANCES})"
        )
    if INSTANCES not in value:
        raise InputError(f'request body has no "{INSTANCES}": send {EXAMPLE_BODY}')
    instances = value[INSTANCES]
    if not isinstance(instances, list):
        raise InputError(f'"{INSTANCES}" must be an array, got {json_type(instances)}')
    return instances


def v1_response(predictions: Sequence[Any]) -> dict[str, list[Any]]:
    """The v1 answer: one prediction per instance, in request order."""
    return {PREDICTIONS: list(predictions)}


def encode_json(value: Any) -> bytes:
    """Compact JSON bytes (no spaces, no indentation): orjson where installed, ``json`` otherwise.

    A string orjson refuses to encode (a lone surrogate, which ``json`` accepts in a body and a message
    may quote back) falls back to ``json``, which escapes it; so does a dict with non-string keys.
    """
    if orjson is not None:
        try:
            return orjson.dumps(value)
        except TypeError:  # orjson.JSONEncodeError is a TypeError
            pass
    return json.dumps(value, separators=(",", ":")).encode("ascii")
