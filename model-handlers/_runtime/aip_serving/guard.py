"""ASGI middleware in front of KServe 0.16's REST app: routes we do not serve, and v2 bodies checked first.

KServe's ModelServer serves more than our predictors should and decodes some requests before any model
code runs, where a malformed body becomes a 500. This middleware, installed by
:meth:`aip_serving.kserve.KServeModel.start` (so in every way a predictor runs: the cluster image's
``predictor.py`` and the local host of ``aip serve --runtime kserve``), answers those requests itself:

- The model repository API (``/v2/repository/...``: ``index``, ``models/<m>/load``, ``models/<m>/unload``)
  answers 404: anyone who can reach the inference port could otherwise unload a model until restart.
  KServe 0.16 has no v1 repository routes; ``/v1/repository/...`` is refused all the same.
- ``POST /v2/models/<m>[/versions/<v>]/infer``:
  - with ``Inference-Header-Content-Length`` (the v2 binary tensor extension) and no JSON content type,
    the whole request is checked (:func:`check_binary_request`) before KServe slices it; a malformed one
    gets 400 ``{"error": "<what is wrong>"}`` instead of KServe's 500;
  - with neither that header nor a content type, the body is read as JSON (KServe 0.16 would otherwise
    take it for a binary request without its header);
  - with another non-JSON content type and no header, 400 naming the header.

No KServe import: the module travels in TorchServe archives too (Python 3.9), where it is never used.
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

BINARY_HEADER = "inference-header-content-length"
# Size in bytes of one element of each fixed-size v2 datatype; BYTES elements carry their own length.
DATATYPE_SIZES = {
    "BOOL": 1, "UINT8": 1, "UINT16": 2, "UINT32": 4, "UINT64": 8,
    "INT8": 1, "INT16": 2, "INT32": 4, "INT64": 8, "FP16": 2, "FP32": 4, "FP64": 8,
}
DATATYPES = (*DATATYPE_SIZES, "BYTES")
# Where count_requests-style state lives on the app: set once the guard is installed.
_STATE_KEY = "aip_request_guard"

_REPOSITORY = re.compile(r"/v[12]/repository(/.*)?")
_V2_INFER = re.compile(r"/v2/models/[^/]+(?:/versions/[^/]+)?/infer")
_DIGITS = re.compile(r"[0-9]+")


class BadRequest(ValueError):
    """A request answered 400 before KServe sees it; the message says what is wrong."""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _element_count(shape: Sequence[int]) -> int:
    count = 1
    for dim in shape:
        count *= dim
    return count


def _check_bytes_elements(where: str, raw: bytes, count: int) -> None:
    """``raw`` must be exactly ``count`` elements, each a little-endian uint32 length and that many UTF-8 bytes."""
    offset, found = 0, 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise BadRequest(f"{where}: BYTES element {found} is cut short (no room for its 4-byte length)")
        (length,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + length > len(raw):
            raise BadRequest(f"{where}: BYTES element {found} says {length} bytes, only {len(raw) - offset} are left "
                             "(BYTES data is a 4-byte little-endian length before each element)")
        try:
            raw[offset:offset + length].decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest(f"{where}: BYTES element {found} is not UTF-8 text") from None
        offset += length
        found += 1
    if found != count:
        raise BadRequest(f"{where}: shape holds {count} BYTES elements, the data has {found}")


def check_binary_request(body: bytes, header_values: Sequence[str]) -> None:
    """Check a v2 binary-extension request as KServe 0.16's ``InferRequest.from_bytes`` will read it.

    Args:
        body: The whole request body: a JSON header, then the inputs' raw data back to back.
        header_values: Every ``Inference-Header-Content-Length`` value the request carries.

    Raises:
        BadRequest: The header is missing, repeated with different values, not a non-negative integer
            or longer than the body; the JSON is not an inference request; an input's
            ``binary_data_size`` is not a non-negative integer or does not fit its shape and datatype;
            BYTES data is not length-prefixed UTF-8; or the raw data do not add up to the body's rest.
    """
    values = {value.strip() for value in header_values}
    if not values:
        raise BadRequest("a binary v2 request needs the Inference-Header-Content-Length header "
                         "(or send JSON with Content-Type: application/json)")
    if len(values) > 1:
        raise BadRequest(f"Inference-Header-Content-Length is given more than once, with different values: "
                         f"{sorted(values)}")
    text = values.pop()
    if not _DIGITS.fullmatch(text):
        raise BadRequest(f"Inference-Header-Content-Length must be a non-negative integer (the JSON header's "
                         f"length in bytes), got {text!r}")
    json_length = int(text)
    if json_length > len(body):
        raise BadRequest(f"Inference-Header-Content-Length is {json_length} but the body has only {len(body)} bytes")
    try:
        header = json.loads(body[:json_length].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise BadRequest(f"the first {json_length} bytes (Inference-Header-Content-Length) are not a JSON "
                         f"object: {err}") from None
    if not isinstance(header, dict):
        raise BadRequest("the JSON header of a binary v2 request must be an object with \"inputs\"")
    if "id" in header and header["id"] is not None and not isinstance(header["id"], str):
        raise BadRequest('"id" must be a string')
    for key in ("parameters",):
        if header.get(key) is not None and not isinstance(header[key], dict):
            raise BadRequest(f'"{key}" must be an object')
    inputs = header.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise BadRequest('"inputs" must be a non-empty list of tensors')
    outputs = header.get("outputs")
    if outputs is not None and not (isinstance(outputs, list) and all(
            isinstance(o, dict) and isinstance(o.get("name"), str)
            and (o.get("parameters") is None or isinstance(o["parameters"], dict)) for o in outputs)):
        raise BadRequest('"outputs" must be a list of objects, each with a string "name"')
    raw_total = 0
    raw = body[json_length:]
    for index, tensor in enumerate(inputs):
        where = f"inputs[{index}]"
        if not isinstance(tensor, dict):
            raise BadRequest(f"{where} must be an object with name, shape and datatype")
        if not isinstance(tensor.get("name"), str):
            raise BadRequest(f'{where}: "name" must be a string')
        where = f'input "{tensor["name"]}"'
        shape, datatype = tensor.get("shape"), tensor.get("datatype")
        if not isinstance(shape, list) or not all(_is_int(dim) and dim >= 0 for dim in shape):
            raise BadRequest(f'{where}: "shape" must be a list of non-negative integers, got {shape!r}')
        if datatype not in DATATYPES:
            raise BadRequest(f'{where}: "datatype" must be one of {", ".join(DATATYPES)}, got {datatype!r}')
        parameters = tensor.get("parameters")
        if parameters is not None and not isinstance(parameters, dict):
            raise BadRequest(f'{where}: "parameters" must be an object')
        if tensor.get("data") is not None:
            continue  # JSON data inside the binary header: checked with the tensor, like a JSON request's
        if not parameters or "binary_data_size" not in parameters:
            raise BadRequest(f'{where}: neither "data" nor parameters.binary_data_size is given')
        size = parameters["binary_data_size"]
        if not _is_int(size) or size < 0:
            raise BadRequest(f"{where}: binary_data_size must be a non-negative integer, got {size!r}")
        if raw_total + size > len(raw):
            raise BadRequest(f"{where}: binary_data_size {size} runs past the end of the body "
                             f"({len(raw) - raw_total} bytes of raw data left after the JSON header)")
        count = _element_count(shape)
        if datatype == "BYTES":
            _check_bytes_elements(where, raw[raw_total:raw_total + size], count)
        elif size != count * DATATYPE_SIZES[datatype]:
            raise BadRequest(f"{where}: shape {shape} of {datatype} needs {count * DATATYPE_SIZES[datatype]} bytes, "
                             f"binary_data_size is {size}")
        raw_total += size
    if raw_total != len(raw):
        raise BadRequest(f"the body has {len(raw)} bytes after the JSON header, the inputs' binary_data_size "
                         f"add up to {raw_total}")


def _json_content_type(value: str | None) -> bool:
    if value is None:
        return False
    media = value.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


async def _answer(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode("utf-8")
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class RequestGuardMiddleware:
    """Refuse the repository API and check v2 binary requests before KServe reads them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = re.sub(r"/{2,}", "/", scope.get("path", "")).rstrip("/").lower()
        if _REPOSITORY.fullmatch(path):
            await _answer(send, 404, "the model repository API is not served here: models are loaded at start only")
            return
        if scope.get("method") != "POST" or not _V2_INFER.fullmatch(path):
            await self.app(scope, receive, send)
            return
        headers = [(name.lower(), value) for name, value in scope.get("headers", [])]
        content_types = [value.decode("latin-1") for name, value in headers if name == b"content-type"]
        if content_types and _json_content_type(content_types[-1]):
            await self.app(scope, receive, send)
            return
        binary = [value.decode("latin-1") for name, value in headers if name == BINARY_HEADER.encode()]
        if not binary:
            if content_types:
                await _answer(send, 400, f"a v2 body of Content-Type {content_types[-1]!r} is read as binary and "
                              "needs the Inference-Header-Content-Length header; "
                              "send JSON with Content-Type: application/json")
                return
            # No content type and no binary header: JSON, as the v2 protocol means it.
            scope = dict(scope)
            scope["headers"] = [*scope.get("headers", []), (b"content-type", b"application/json")]
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        chunks: list[bytes] = []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                # The client went away before the body was complete: nobody to answer.
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        try:
            check_binary_request(b"".join(chunks), binary)
        except BadRequest as err:
            await _answer(send, 400, str(err))
            return

        async def replay() -> Message:
            if messages:
                return messages.pop(0)
            return await receive()

        await self.app(scope, replay, send)


def guard_requests(app: Any) -> bool:
    """Install :class:`RequestGuardMiddleware` on the Starlette/FastAPI ``app``, once.

    Returns False when the app is already serving (Starlette then refuses new middleware).
    """
    if getattr(app.state, _STATE_KEY, False):
        return True
    try:
        app.add_middleware(RequestGuardMiddleware)
    except RuntimeError:
        return False
    setattr(app.state, _STATE_KEY, True)
    return True
