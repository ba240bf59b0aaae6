"""``aip_inference_requests_total{model_name, code}``: inference requests by model and HTTP status.

KServe 0.16's ModelServer exports latency histograms (``request_predict_seconds`` ...) but nothing
that tells a success from an error: its histograms observe every call of ``predict``, failed or not,
and a request that KServe itself refuses (a body that is not JSON, a v2 body that does not validate,
a route KServe does not implement) never reaches them. Alerts on error ratios need the status, so
this module counts each inference request by the status the client actually received, in an ASGI
middleware around the whole application. It counts into prometheus_client's default registry, which
KServe's ``/metrics`` serves, next to KServe's own metrics.

TorchServe needs none of this (it exports ``ts_inference_requests_total`` and ``Requests5XX``...),
but this module travels in every TorchServe archive with the rest of the runtime: importing it must
work where prometheus_client is absent, so the import is deferred to the first counter.

Counted: ``POST /v1/models/<m>:predict``, ``POST /v2/models/<m>/infer`` and
``POST /v2/models/<m>/versions/<v>/infer`` (which the guard answers 404: versions are not served), for
the models this server hosts, on the path exactly as KServe's router matches it (:func:`inference_model`).
Requests naming another model are not counted (their 404 is no model's error, and unknown names must
not create series); nor are health checks and ``/metrics``. The ``model_name`` label matches the one
of KServe's histograms.
With ``--workers`` > 1 every worker process has its own registry, as KServe's histograms do.

``code="499"`` (nginx's "client closed request"): the connection ended before the application answered,
so the client received nothing from it: it went away mid-upload or before the answer, or uvicorn itself
refused the request's HTTP framing (bad chunked encoding) halfway through the body and answered that 400
on its own, outside the application. Not a server error, so never a 5xx; the recording rules leave it
out of the answers (``infra/observability/rules/inference.rules.yaml``).

gRPC v2 ``ModelInfer`` calls for hosted models are counted in the same counter by
:mod:`aip_serving.grpc_guard`, with ``code`` the HTTP status that means the same as the call's gRPC status
(:func:`http_status_of_grpc`), so the rules and alerts read both protocols alike.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

REQUESTS_METRIC = "aip_inference_requests_total"
REQUESTS_LABELS = ("model_name", "code")
# The counter's name without the suffix prometheus_client adds to every counter.
_COUNTER_NAME = REQUESTS_METRIC[: -len("_total")]
_HELP = "Inference requests by model and HTTP status code of the response (any status, from any layer)."
# Where count_requests() keeps, on the app, the names of the models whose requests are counted.
_STATE_KEY = "aip_counted_models"
# A response that never started because the application raised: Starlette's outermost middleware,
# outside this one, then answers 500.
UNHANDLED_STATUS = 500
# The connection ended before the application answered (see the module's docstring).
CLIENT_CLOSED_STATUS = 499
# gRPC status names and the HTTP status of the same meaning, as grpc-gateway maps them
# (https://github.com/grpc-ecosystem/grpc-gateway/blob/main/runtime/errors.go, HTTPStatusFromCode): a
# cancelled call is the client's going away (499, never a 5xx), a refused argument a 400, a model or
# version that is not served a 404, an RPC that is not served a 501.
GRPC_HTTP_STATUS = {
    "OK": 200, "CANCELLED": CLIENT_CLOSED_STATUS, "UNKNOWN": 500, "INVALID_ARGUMENT": 400,
    "DEADLINE_EXCEEDED": 504, "NOT_FOUND": 404, "ALREADY_EXISTS": 409, "PERMISSION_DENIED": 403,
    "RESOURCE_EXHAUSTED": 429, "FAILED_PRECONDITION": 400, "ABORTED": 409, "OUT_OF_RANGE": 400,
    "UNIMPLEMENTED": 501, "INTERNAL": 500, "UNAVAILABLE": 503, "DATA_LOSS": 500, "UNAUTHENTICATED": 401,
}

# The inference routes as KServe's router (Starlette) matches them: on the raw ``scope["path"]``, case and
# slashes as sent. ``/v2/models/digits/infer/`` or ``//v2/...`` is no inference route: KServe answers it
# 307 or 404 without a model. The request guard (aip_serving.guard) matches with these same patterns.
V1_PREDICT = re.compile(r"/v1/models/(?P<model>[^/:]+):predict")
# The explain verb is an inference request too; without an explainer KServe answers it 501.
_V1_EXPLAIN = re.compile(r"/v1/models/(?P<model>[^/:]+):explain")
V2_INFER = re.compile(r"/v2/models/(?P<model>[^/]+)/infer")
# Any route under a model version (``/versions/<v>``, ``.../ready``, ``.../infer``): the guard answers 404.
V2_VERSIONED = re.compile(r"/v2/models/(?P<model>[^/]+)/versions/[^/]+(?:/.*)?")
_V2_VERSIONED_INFER = re.compile(r"/v2/models/(?P<model>[^/]+)/versions/[^/]+/infer")
_INFERENCE_ROUTES = (V1_PREDICT, _V1_EXPLAIN, V2_INFER, _V2_VERSIONED_INFER)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

logger = logging.getLogger(__name__)
_default_counter: Any = None


def requests_counter(registry: Any = None) -> Any:
    """The ``aip_inference_requests_total`` counter of ``registry`` (the default registry when None).

    One per registry: prometheus_client refuses a second metric of the same name, so the default
    registry's counter is created once and shared by every model of the process.
    """
    global _default_counter
    from prometheus_client import Counter

    if registry is not None:
        return Counter(_COUNTER_NAME, _HELP, REQUESTS_LABELS, registry=registry)
    if _default_counter is None:
        _default_counter = Counter(_COUNTER_NAME, _HELP, REQUESTS_LABELS)
    return _default_counter


def http_status_of_grpc(code_name: str | None) -> int:
    """The HTTP status meaning what the gRPC status ``code_name`` (``"NOT_FOUND"``...) means; None is OK.

    A name this table does not know is a server error (500).
    """
    return GRPC_HTTP_STATUS.get(code_name or "OK", UNHANDLED_STATUS)


def inference_model(method: str, path: str) -> str | None:
    """The model an inference request names, or None when ``method path`` is no inference route.

    ``path`` is matched as KServe's router matches it (case-sensitive, no slash collapsed or stripped),
    so a request counted here is one KServe routes to the model, and vice versa.
    """
    if method != "POST":
        return None
    for route in _INFERENCE_ROUTES:
        match = route.fullmatch(path)
        if match:
            return match.group("model")
    return None


class RequestCounterMiddleware:
    """ASGI middleware counting the inference requests of the given models by response status.

    Args:
        app: The application it wraps.
        models: Names of the counted models; read on every request, so names added later count too.
        counter: A prometheus_client counter labelled ``model_name`` and ``code``; the default
            registry's ``aip_inference_requests_total`` when None.
    """

    def __init__(self, app: ASGIApp, *, models: set[str], counter: Any = None) -> None:
        self.app = app
        self.models = models
        self.counter = counter if counter is not None else requests_counter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        model = inference_model(scope.get("method", ""), scope.get("path", "")) if scope["type"] == "http" else None
        if model is None or model not in self.models:
            await self.app(scope, receive, send)
            return
        statuses: list[int] = []
        # Set when the server reports the connection gone before the application started an answer.
        gone: list[bool] = []

        async def receive_noting_disconnect() -> Message:
            message = await receive()
            if message["type"] == "http.disconnect" and not statuses:
                gone.append(True)
            return message

        async def send_recording_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                # An answer started after the connection was gone never reached the client.
                statuses.append(CLIENT_CLOSED_STATUS if gone else int(message["status"]))
            await send(message)

        try:
            await self.app(scope, receive_noting_disconnect, send_recording_status)
        except Exception as err:
            if not statuses:
                statuses.append(CLIENT_CLOSED_STATUS if gone else UNHANDLED_STATUS)
            if not (gone and _is_client_disconnect(err)):
                raise
            # Reading the body failed because the client left: nobody to answer, nothing to log as an error.
            logger.info("inference request to model %s: the connection ended before the body was read", model)
        finally:
            # No status at all: cancelled before any answer, with no disconnect seen; nothing was served.
            if gone and not statuses:
                statuses.append(CLIENT_CLOSED_STATUS)
            if statuses:
                self.counter.labels(model_name=model, code=str(statuses[0])).inc()


def _is_client_disconnect(err: BaseException) -> bool:
    """Starlette's ``ClientDisconnect`` (by name: this module must import without Starlette)."""
    return type(err).__name__ == "ClientDisconnect"


def count_requests(app: Any, model_name: str, *, counter: Any = None) -> bool:
    """Count ``model_name``'s inference requests on the Starlette/FastAPI ``app``.

    The middleware is added once per app; later models only add their name. Returns False, with a
    warning, when the app is already serving (Starlette then refuses new middleware): the model still
    serves, only uncounted.
    """
    models = getattr(app.state, _STATE_KEY, None)
    if models is None:
        models = set()
        try:
            app.add_middleware(RequestCounterMiddleware, models=models, counter=counter)
        except RuntimeError as err:
            logger.warning("requests of model %s are not counted in %s: %s", model_name, REQUESTS_METRIC, err)
            return False
        setattr(app.state, _STATE_KEY, models)
    models.add(model_name)
    return True
