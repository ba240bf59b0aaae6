"""gRPC v2 (KServe 0.16's ``inference.GRPCInferenceService``) held to the rules of the REST side.

KServe's ``GRPCServer`` serves every RPC of its servicer behind two interceptors of its own (logging, and
exceptions to status codes) and listens on ``[::]``. :class:`GuardedGRPCServer` builds the same server with
two interceptors in front of KServe's, so the guard (:mod:`aip_serving.guard`) and the counter
(:mod:`aip_serving.metrics`) hold on gRPC as they do on REST:

- ``RepositoryModelLoad`` / ``RepositoryModelUnload`` (any ``Repository*`` RPC) answer ``UNIMPLEMENTED``:
  anyone who can reach the port could otherwise unload a model until restart. ``ServerMetadata`` no longer
  advertises ``model_repository_extension``.
- ``ModelInfer``, ``ModelMetadata`` and ``ModelReady`` naming a model version answer ``NOT_FOUND``, as REST's
  versioned routes answer 404: a model serves one version.
- A ``ModelInfer`` for a hosted model is checked before KServe decodes it (:func:`check_infer_request`);
  a malformed one, or bytes that are no ``ModelInferRequest`` at all, answer ``INVALID_ARGUMENT`` with what
  is wrong instead of KServe's ``INTERNAL``. An ``InvalidInput`` from the model is KServe's own
  ``INVALID_ARGUMENT``.
- Each ``ModelInfer`` for a hosted model is counted in ``aip_inference_requests_total`` with ``code`` the
  HTTP status of the same meaning (:func:`aip_serving.metrics.http_status_of_grpc`), the guard's refusals
  included; a call the client cancels is 499. Requests naming another model are not counted (their
  ``NOT_FOUND`` is no model's error), nor undecodable ones (they name no model).

"Hosted" is read from KServe's model registry on every call. :meth:`aip_serving.kserve.KServeModel.start`
installs the server (:func:`install_grpc_guard`) in every way a predictor runs; the local host of
``aip serve --runtime kserve`` subclasses it to listen on loopback.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from concurrent import futures
from typing import Any

import grpc
import kserve.model_server
from grpc import aio
from kserve.logging import logger
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc
from kserve.protocol.grpc.interceptors import ExceptionToStatusInterceptor, LoggingInterceptor
from kserve.protocol.grpc.server import GRPCServer
from kserve.protocol.grpc.servicer import InferenceServicer

from aip_serving.guard import DATATYPE_SIZES, DATATYPES, BadRequest, _check_bytes_elements, _element_count
from aip_serving.metrics import http_status_of_grpc, requests_counter

SERVICE = "inference.GRPCInferenceService"
_REPOSITORY_PREFIX = "Repository"
_REPOSITORY_EXTENSION = "model_repository_extension"
# The field of InferTensorContents each datatype is read from; FP16 has none (raw_input_contents only).
CONTENTS_FIELDS = {
    "BOOL": "bool_contents", "UINT8": "uint_contents", "UINT16": "uint_contents", "UINT32": "uint_contents",
    "UINT64": "uint64_contents", "INT8": "int_contents", "INT16": "int_contents", "INT32": "int_contents",
    "INT64": "int64_contents", "FP32": "fp32_contents", "FP64": "fp64_contents", "BYTES": "bytes_contents",
}
# Datatypes narrower than their contents field, whose values numpy would otherwise wrap or refuse.
_RANGES = {"INT8": (-(2**7), 2**7 - 1), "INT16": (-(2**15), 2**15 - 1), "UINT8": (0, 2**8 - 1),
           "UINT16": (0, 2**16 - 1)}

Hosted = Callable[[str], bool]


class _Undecodable:
    """What the guard's deserializer hands on for bytes that are not the RPC's request message."""

    def __init__(self, error: Exception) -> None:
        self.error = error


def check_infer_request(request: Any) -> None:
    """Check a ``ModelInferRequest`` as KServe 0.16's ``InferRequest.from_grpc`` and ``as_numpy`` will read it.

    Raises:
        BadRequest: No inputs; an input without a name or named twice; a negative dimension; a datatype
            outside the v2 datatypes; ``raw_input_contents`` not one entry per input, or given beside an
            input's ``contents``; raw bytes that do not fit shape and datatype (BYTES: each element a
            4-byte little-endian length and UTF-8 text); ``contents`` in another field than the datatype's,
            holding another number of values than the shape, or out of the datatype's range; FP16 outside
            ``raw_input_contents``.
    """
    inputs = list(request.inputs)
    if not inputs:
        raise BadRequest("a ModelInferRequest needs at least one tensor in inputs")
    raw = list(request.raw_input_contents)
    if raw and len(raw) != len(inputs):
        raise BadRequest(f"the request has {len(inputs)} inputs and {len(raw)} raw_input_contents: give one "
                         "raw_input_contents entry per input, in the order of inputs (or none, and use contents)")
    seen: set[str] = set()
    for index, tensor in enumerate(inputs):
        if not tensor.name:
            raise BadRequest(f"inputs[{index}] has no name")
        where = f'input "{tensor.name}"'
        if tensor.name in seen:
            raise BadRequest(f"{where} appears more than once")
        seen.add(tensor.name)
        shape = list(tensor.shape)
        if any(dim < 0 for dim in shape):
            raise BadRequest(f"{where}: shape must be non-negative integers, got {shape}")
        if tensor.datatype not in DATATYPES:
            raise BadRequest(f"{where}: datatype must be one of {', '.join(DATATYPES)}, got {tensor.datatype!r}")
        count = _element_count(shape)
        if raw:
            if tensor.HasField("contents"):
                raise BadRequest(f"{where} has contents while the request has raw_input_contents: send each "
                                 "input's data in one of them only")
            _check_raw(where, tensor.datatype, shape, count, raw[index])
        else:
            _check_contents(where, tensor, shape, count)


def _check_raw(where: str, datatype: str, shape: Sequence[int], count: int, data: bytes) -> None:
    if datatype == "BYTES":
        _check_bytes_elements(f"{where} (raw_input_contents)", data, count)
        return
    needed = count * DATATYPE_SIZES[datatype]
    if len(data) != needed:
        raise BadRequest(f"{where}: shape {list(shape)} of {datatype} needs {needed} bytes of raw_input_contents, "
                         f"got {len(data)}")


def _check_contents(where: str, tensor: Any, shape: Sequence[int], count: int) -> None:
    field = CONTENTS_FIELDS.get(tensor.datatype)
    if field is None:
        raise BadRequest(f"{where}: {tensor.datatype} data goes in raw_input_contents (contents has no field for it)")
    elsewhere = sorted({name for name in CONTENTS_FIELDS.values()
                        if name != field and len(getattr(tensor.contents, name))})
    if elsewhere:
        raise BadRequest(f"{where}: {tensor.datatype} is read from contents.{field}, the data is in "
                         f"contents.{elsewhere[0]}")
    values = getattr(tensor.contents, field)
    if len(values) != count:
        raise BadRequest(f"{where}: shape {list(shape)} holds {count} elements, contents.{field} has {len(values)}")
    bounds = _RANGES.get(tensor.datatype)
    if bounds and values and (min(values) < bounds[0] or max(values) > bounds[1]):
        raise BadRequest(f"{where}: {tensor.datatype} values must lie in [{bounds[0]}, {bounds[1]}]")


def _rpc_name(method: str) -> str | None:
    """``ModelInfer`` for ``/inference.GRPCInferenceService/ModelInfer``; None for another service."""
    service, _, name = method.lstrip("/").rpartition("/")
    return name if service == SERVICE else None


def _tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    """A deserializer that hands undecodable bytes on instead of failing before any interceptor runs."""
    if deserializer is None:
        return None

    def deserialize(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception as err:  # protobuf's DecodeError, or whatever a codec raises
            return _Undecodable(err)

    return deserialize


def _wrapped(handler: Any, behavior: Callable[..., Any], *, tolerant: bool = False) -> Any:
    """``handler`` (unary-unary) with ``behavior`` in its place, the same (de)serializers."""
    deserializer = _tolerant(handler.request_deserializer) if tolerant else handler.request_deserializer
    return grpc.unary_unary_rpc_method_handler(behavior, request_deserializer=deserializer,
                                               response_serializer=handler.response_serializer)


async def _call(behavior: Callable[..., Any], request: Any, context: Any) -> Any:
    result = behavior(request, context)
    return await result if inspect.isawaitable(result) else result


class RequestGuardInterceptor(aio.ServerInterceptor):
    """Refuse the repository RPCs and model versions, check ``ModelInfer`` before KServe decodes it.

    Args:
        hosted: Whether a model name is one this server hosts; only their requests are checked (another
            name is KServe's ``NOT_FOUND``).
    """

    def __init__(self, hosted: Hosted) -> None:
        self.hosted = hosted

    async def intercept_service(self, continuation: Callable[[Any], Any], handler_call_details: Any) -> Any:
        name = _rpc_name(handler_call_details.method)
        if name is not None and name.startswith(_REPOSITORY_PREFIX):
            return grpc.unary_unary_rpc_method_handler(_refuse_repository)
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        inner = handler.unary_unary
        if name == "ModelInfer":
            async def infer(request: Any, context: Any) -> Any:
                await self._check_infer(request, context)
                return await _call(inner, request, context)

            return _wrapped(handler, infer, tolerant=True)
        if name in ("ModelReady", "ModelMetadata"):
            async def about_model(request: Any, context: Any) -> Any:
                if isinstance(request, _Undecodable):
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"not a {name}Request: {request.error}")
                if request.version:
                    await context.abort(grpc.StatusCode.NOT_FOUND, _version_message(request.name))
                return await _call(inner, request, context)

            return _wrapped(handler, about_model, tolerant=True)
        if name == "ServerMetadata":
            async def server_metadata(request: Any, context: Any) -> Any:
                response = await _call(inner, request, context)
                kept = [e for e in response.extensions if e != _REPOSITORY_EXTENSION]
                del response.extensions[:]
                response.extensions.extend(kept)
                return response

            return _wrapped(handler, server_metadata)
        return handler

    async def _check_infer(self, request: Any, context: Any) -> None:
        if isinstance(request, _Undecodable):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"not a ModelInferRequest: {request.error}")
        if request.model_version:
            await context.abort(grpc.StatusCode.NOT_FOUND, _version_message(request.model_name))
        if self.hosted(request.model_name):
            try:
                check_infer_request(request)
            except BadRequest as err:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(err))


async def _refuse_repository(request: Any, context: Any) -> None:
    await context.abort(grpc.StatusCode.UNIMPLEMENTED,
                        "the model repository API is not served here: models are loaded at start only")


def _version_message(model: str) -> str:
    return (f'model versions are not served: each model serves one version; call model "{model}" with the '
            "version left empty")


class RequestCounterInterceptor(aio.ServerInterceptor):
    """Count each ``ModelInfer`` of a hosted model by the HTTP status matching its final gRPC status.

    Args:
        hosted: Whether a model name is one this server hosts.
        counter: A prometheus_client counter labelled ``model_name`` and ``code``; the default registry's
            ``aip_inference_requests_total`` when None.
    """

    def __init__(self, hosted: Hosted, counter: Any = None) -> None:
        self.hosted = hosted
        self.counter = counter if counter is not None else requests_counter()

    async def intercept_service(self, continuation: Callable[[Any], Any], handler_call_details: Any) -> Any:
        handler = await continuation(handler_call_details)
        if _rpc_name(handler_call_details.method) != "ModelInfer" or handler is None or handler.unary_unary is None:
            return handler
        inner = handler.unary_unary

        async def counted(request: Any, context: Any) -> Any:
            model = getattr(request, "model_name", None)
            if not model or not self.hosted(model):
                return await _call(inner, request, context)
            code: str | None = "UNKNOWN"
            try:
                response = await _call(inner, request, context)
                code = _code_name(context.code())
                return response
            except BaseException as err:
                # Cancelled (the client went away or its deadline passed): nobody received an answer.
                code = "CANCELLED" if _is_cancellation(err) else (_code_name(context.code()) or "UNKNOWN")
                raise
            finally:
                self.counter.labels(model_name=model, code=str(http_status_of_grpc(code))).inc()

        return _wrapped(handler, counted)


def _code_name(code: Any) -> str | None:
    """``"NOT_FOUND"`` for ``grpc.StatusCode.NOT_FOUND``; None while no status was set (OK)."""
    return getattr(code, "name", None) if code is not None else None


def _is_cancellation(err: BaseException) -> bool:
    # asyncio.CancelledError, by name: aio cancels the handler's task when the call ends early.
    return type(err).__name__ == "CancelledError"


def guarded_interceptors(hosted: Hosted, counter: Any = None) -> tuple[aio.ServerInterceptor, ...]:
    """The counter, the guard, then KServe 0.16's own two; the first is outermost, so the counter sees the
    guard's answers and KServe's statuses alike."""
    return (RequestCounterInterceptor(hosted, counter), RequestGuardInterceptor(hosted), LoggingInterceptor(),
            ExceptionToStatusInterceptor())


class GuardedGRPCServer(GRPCServer):
    """KServe 0.16's ``GRPCServer`` with the guard and the counter in front of KServe's own interceptors.

    Attributes:
        listen_host: Host to listen on; KServe's ``[::]`` (every interface, as a pod's Service needs).
    """

    listen_host = "[::]"

    async def start(self, max_workers: int) -> None:
        # KServe's start(), with our interceptors in front of KServe's and our listen address.
        registry = self._data_plane.model_registry

        def hosted(name: str) -> bool:
            return registry.get_model(name) is not None

        self._server = aio.server(
            futures.ThreadPoolExecutor(max_workers=max_workers),
            interceptors=guarded_interceptors(hosted),
            options=[
                ("grpc.max_send_message_length", self._kwargs.get("grpc_max_send_message_length")),
                ("grpc.max_receive_message_length", self._kwargs.get("grpc_max_receive_message_length")),
            ],
        )
        grpc_predict_v2_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(
            InferenceServicer(self._data_plane, self._model_repository_extension), self._server)
        address = f"{self.listen_host}:{self._port}"
        self._server.add_insecure_port(address)
        logger.info("Starting gRPC server with %s workers on %s (repository API refused)", max_workers, address)
        await self._server.start()
        await self._server.wait_for_termination()


def install_grpc_guard() -> None:
    """Make ``kserve.ModelServer.start`` build a :class:`GuardedGRPCServer` (it looks ``GRPCServer`` up by name).

    A subclass already in place (the local host's, bound to loopback) is kept. Effective when called
    before ``ModelServer.start`` builds its gRPC server, as ``KServeModel.start`` is.
    """
    if not issubclass(kserve.model_server.GRPCServer, GuardedGRPCServer):
        kserve.model_server.GRPCServer = GuardedGRPCServer  # type: ignore[misc]
