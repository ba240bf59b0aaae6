"""ASGI middleware in front of KServe 0.16's REST app: routes we do not serve, and v2 bodies checked first.

KServe's ModelServer serves more than our predictors should and decodes some requests before any model
code runs, where a malformed body becomes a 500. This middleware, installed by
:meth:`aip_serving.kserve.KServeModel.start` (so in every way a predictor runs: the cluster image's
``predictor.py`` and the local host of ``aip serve --runtime kserve``), answers those requests itself:

- The model repository API (``/v2/repository/...``: ``index``, ``models/<m>/load``, ``models/<m>/unload``)
  answers 404, in any spelling (case, doubled or trailing slashes): anyone who can reach the inference
  port could otherwise unload a model until restart. KServe 0.16 has no v1 repository routes;
  ``/v1/repository/...`` is refused all the same. ``GET /v2`` (server metadata) no longer advertises
  ``model_repository_extension``.
- Every route under a model version (``/v2/models/<m>/versions/<v>``, ``.../ready``, ``.../infer``)
  answers 404 ``{"error": ...}``: a model serves one version, at ``/v2/models/<m>/...``. KServe 0.16
  would answer 501 (a server error for a client's choice of URL).
- ``POST /v2/models/<m>/infer`` for a model this server hosts, the path matched exactly as KServe's router
  matches it (:data:`aip_serving.metrics.V2_INFER`, the counter's pattern; another spelling is KServe's
  307 or 404, and an unknown model KServe's 404):
  - with ``Inference-Header-Content-Length`` (the v2 binary tensor extension) and no JSON content type,
    the whole request is checked (:func:`check_binary_request`) before KServe slices it; a malformed one
    gets 400 ``{"error": "<what is wrong>"}`` instead of KServe's 500;
  - with neither that header nor a content type, the body is read as JSON (KServe 0.16 would otherwise
    take it for a binary request without its header);
  - with another non-JSON content type and no header, 400 naming the header.

The gRPC side (KServe's ``inference.GRPCInferenceService``) follows the same rules:
:mod:`aip_serving.grpc_guard`.

No KServe import: the module travels in TorchServe archives too (Python 3.9), where it is never used.
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from aip_serving.metrics import V2_INFER, V2_VERSIONED

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
# Where guard_requests() keeps, on the app, the names of the hosted models (set once the guard is installed).
_STATE_KEY = "aip_request_guard"

_REPOSITORY = re.compile(r"/v[12]/repository(/.*)?")
# KServe's server metadata route, and the extension it advertises although the guard refuses it.
_SERVER_METADATA = "/v2"
_REPOSITORY_EXTENSION = "model_repository_extension"
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
    """Refuse the repository API and model versions, and check v2 binary requests before KServe reads them.

    Args:
        app: The application it wraps.
        models: Names of the models this server hosts; read on every request, so names added later count
            too. Only their v2 inference requests are checked: another name is KServe's 404.
    """

    def __init__(self, app: ASGIApp, *, models: set[str] | None = None) -> None:
        self.app = app
        self.models = models if models is not None else set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        # Every spelling of the repository API is refused, whether KServe's router would take it or not.
        if _REPOSITORY.fullmatch(re.sub(r"/{2,}", "/", path).rstrip("/").lower()):
            await _answer(send, 404, "the model repository API is not served here: models are loaded at start only")
            return
        versioned = V2_VERSIONED.fullmatch(path)
        if versioned:
            model = versioned.group("model")
            await _answer(send, 404, f"model versions are not served: each model serves one version, use "
                          f"/v2/models/{model}/infer (and /v2/models/{model}, /v2/models/{model}/ready)")
            return
        if scope.get("method") == "GET" and path == _SERVER_METADATA:
            await self.app(scope, receive, _without_repository_extension(send))
            return
        match = V2_INFER.fullmatch(path) if scope.get("method") == "POST" else None
        if match is None or match.group("model") not in self.models:
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


def _without_repository_extension(send: Send) -> Send:
    """``send`` for ``GET /v2``: the server metadata's ``extensions`` lose ``model_repository_extension``."""
    start: list[Message] = []
    chunks: list[bytes] = []

    async def rewrite(message: Message) -> None:
        if message["type"] == "http.response.start":
            start.append(message)
            return
        if message["type"] != "http.response.body" or not start:
            await send(message)
            return
        chunks.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        body = b"".join(chunks)
        try:
            metadata = json.loads(body) if start[0]["status"] == 200 else None
        except ValueError:
            metadata = None
        if isinstance(metadata, dict) and isinstance(metadata.get("extensions"), list):
            metadata["extensions"] = [e for e in metadata["extensions"] if e != _REPOSITORY_EXTENSION]
            body = json.dumps(metadata).encode("utf-8")
        headers = [(name, value) for name, value in start[0].get("headers", []) if name.lower() != b"content-length"]
        await send({**start[0], "headers": [*headers, (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    return rewrite


def guard_requests(app: Any, model_name: str | None = None) -> bool:
    """Install :class:`RequestGuardMiddleware` on the Starlette/FastAPI ``app``, once; ``model_name`` joins
    the models whose v2 inference requests it checks (later models only add their name).

    Returns False when the app is already serving (Starlette then refuses new middleware).
    """
    models = getattr(app.state, _STATE_KEY, None)
    if models is None:
        models = set()
        try:
            app.add_middleware(RequestGuardMiddleware, models=models)
        except RuntimeError:
            return False
        setattr(app.state, _STATE_KEY, models)
    if model_name is not None:
        models.add(model_name)
    return True
