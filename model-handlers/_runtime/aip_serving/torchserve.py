"""TorchServe adapter: a ``BaseHandler`` that feeds a :class:`~aip_serving.core.ModelCore`.

A model folder's ``handler.py`` defines exactly one class (TorchServe's ``ts.model_loader`` refuses a
handler module that defines several), a subclass of :class:`TorchServeHandler` naming its core::

    class DigitsHandler(TorchServeHandler):
        core_class = DigitsCore

What TorchServe 0.12 hands to ``handle(data, context)`` (read from the installed ``ts`` package):

- Without a service envelope (the platform's setting): ``data`` is a list with one ``dict`` per request of
  the dynamic batch, the body under ``"body"`` (or ``"data"``). With ``decode_input_request=false`` (the
  platform's config.properties) the body is the raw ``bytearray`` and :mod:`aip_serving.protocol` parses
  it (with orjson where installed); a stock TorchServe instead runs ``json.loads`` on an
  ``application/json`` body first (a ``dict``) and decodes ``text/*`` to a ``str``: both are served. The
  answer must be a list of the same length. Each answer is compact JSON ``bytes``, which TorchServe sends
  as they are; anything else it would ``json.dumps`` with ``indent=2``.
  ``context.set_response_status(code, phrase, idx)`` sets the HTTP status of request ``idx`` alone;
  raising ``PredictionException(message, code)`` fails the whole batch with that status.
- With ``service_envelope=kserve`` (``TS_SERVICE_ENVELOPE``), ``KServeEnvelope`` reads only the FIRST
  request of the batch, calls ``handle`` with that request's ``instances`` list and wraps the answer into
  one ``{"predictions": ...}``; with ``batchSize`` > 1 the other requests are lost and TorchServe answers
  503 "number of batch response mismatched". This handler recognises that shape and serves it, but only
  ``batchSize: 1`` works behind an envelope.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from ts.torch_handler.base_handler import BaseHandler
from ts.utils.util import PredictionException

from aip_serving.core import ModelCore, Prediction
from aip_serving.errors import InputError
from aip_serving.logs import RequestRecord, configure_request_logger, log_request
from aip_serving.model_config import max_batch_instances, torch_threads, workers
from aip_serving.protocol import encode_json, v1_response
from aip_serving.threads import apply_torch_threads

RUNTIME = "torchserve"
_BODY_KEYS = ("body", "data")
# Netty puts the phrase in the HTTP status line: it must be one short line of printable ASCII.
_MAX_PHRASE = 128


def device_for(gpu_id: int | str | None) -> torch.device:
    """The worker's device: the GPU TorchServe assigned, or the CPU when there is none."""
    if gpu_id is not None and torch.cuda.is_available():
        return torch.device(f"cuda:{int(gpu_id)}")
    return torch.device("cpu")


def reason_phrase(message: str) -> str:
    """A message made safe for an HTTP status line: one line of printable ASCII (0x20-0x7e), short.

    Whitespace runs become one space, "…" becomes "...", every other character outside 0x20-0x7e
    (control characters, DEL, non-ASCII) becomes "?", and the result is cut to ``_MAX_PHRASE``
    characters. The full message is in the JSON body.
    """
    flat = " ".join(message.split()).replace("\u2026", "...")
    if len(flat) > _MAX_PHRASE:
        flat = flat[: _MAX_PHRASE - 3] + "..."
    return "".join(char if " " <= char <= "~" else "?" for char in flat)


def error_body(err: InputError) -> dict[str, Any]:
    """The answer to a refused request, shaped like TorchServe's own error answers."""
    return {"code": err.http_status, "type": type(err).__name__, "message": err.message}


def _parameter_names(context: Any, idx: int) -> set[str] | None:
    """The parameter names TorchServe recorded for request ``idx`` of the batch, or None when unknown.

    ``ts.service`` records, per request, ``{name: {"content-type": ...}}`` for each parameter it put into
    that request's dict (next to the request's HTTP headers, whose values are strings).
    """
    processors = getattr(context, "request_processor", None)
    try:
        properties = processors[idx]._request_header  # type: ignore[index]
    except (TypeError, IndexError, AttributeError, KeyError):
        return None
    if not isinstance(properties, Mapping):
        return None
    return {name for name, value in properties.items() if isinstance(value, Mapping) and "content-type" in value}


def is_request(item: Any, context: Any = None, idx: int = 0) -> bool:
    """Whether a ``handle`` item is a TorchServe request (and not an instance unwrapped by an envelope).

    Without an envelope every item is a dict keyed by the request's parameter names: ``body`` for a raw
    POST, the field names of a form (``application/x-www-form-urlencoded`` or ``multipart/form-data``).
    An item is a request when it has a ``body`` or ``data`` key, when its keys are the parameters
    TorchServe recorded for that request, or when a value is raw bytes (JSON, which is all an envelope
    hands over, never decodes to bytes). A model whose instances are objects with a ``body`` or ``data``
    field would make this ambiguous under an envelope; none does, and the platform runs without one.
    """
    if not isinstance(item, Mapping):
        return False
    if any(key in item for key in _BODY_KEYS):
        return True
    names = _parameter_names(context, idx)
    if names is not None and item and set(item) <= names:
        return True
    return any(isinstance(value, (bytes, bytearray)) for value in item.values())


def body_of(request: Mapping[str, Any]) -> Any:
    """A request's body, under ``body`` (raw POST) or ``data`` (a form field named data).

    Raises:
        InputError: The request has neither, e.g. a form (``instances=1``): the body must be raw JSON.
    """
    if "body" in request:
        return request["body"]
    if "data" in request:
        return request["data"]
    fields = ", ".join(sorted(str(name) for name in request)[:5]) or "none"
    raise InputError(f'send the request as a raw JSON body {{"instances": [...]}} with Content-Type: '
                     f"application/json, not as form fields (got fields: {fields})")


class TorchServeHandler(BaseHandler):
    """Template handler: decode each request, predict all valid instances of the batch in one pass.

    A bad request is answered with its own 4xx status and message (``context.set_response_status``)
    while the other requests of the same batch are served; nothing a client sends can kill the worker.

    Attributes:
        core_class: The model's :class:`~aip_serving.core.ModelCore` subclass; set by each model.
        core: The loaded core, after :meth:`initialize`.
        model_name: Name TorchServe serves the model under.
        model_version: The archive's version (``--version``), for the logs.
    """

    core_class: ClassVar[type[ModelCore[Any]]]

    def __init__(self) -> None:
        super().__init__()
        self.core: ModelCore[Any] | None = None
        self.model_name = ""
        self.model_version = ""
        self.request_logger = None

    def initialize(self, context: Any) -> None:
        """Load the weights (``weights_only=True``) onto the worker's device.

        Deliberately does not call ``BaseHandler.initialize``: that one unpickles the serialized file
        with a full ``torch.load``, which can run code from the archive.
        """
        properties = context.system_properties
        self.manifest = context.manifest or {}
        archived = self.manifest.get("model", {})
        self.model_yaml_config = getattr(context, "model_yaml_config", None) or {}
        # TorchServe 0.12 sets no thread count for a worker (OMP_NUM_THREADS only under torchrun), so torch
        # would start one thread per physical core of the node in every worker: torchThreads, else the
        # pod's CPUs shared by the workers (aip_serving.threads). Intra-op only: set_num_interop_threads
        # raises once inter-op work has run in the process.
        apply_torch_threads(torch_threads(self.model_yaml_config), workers(self.model_yaml_config))
        self.device = device_for(properties.get("gpu_id"))
        self.core = self.core_class.load(
            properties["model_dir"],
            device=self.device,
            max_batch_instances=max_batch_instances(self.model_yaml_config),
            weights_file=archived.get("serializedFile"),
        )
        self.model = self.core.model
        self.model_name = getattr(context, "model_name", None) or archived.get("modelName") or self.core.name
        self.model_version = str(archived.get("modelVersion") or self.core.version)
        self.request_logger = configure_request_logger()
        self.context = context
        self.initialized = True

    def handle(self, data: list[Any] | None, context: Any) -> list[Any]:
        """Answer every request of a TorchServe batch, in order."""
        started = time.perf_counter()
        self.context = context
        # TorchServe never sends an empty batch: an empty list is an envelope's empty "instances".
        if not data or not all(is_request(item, context, idx) for idx, item in enumerate(data)):
            return self._handle_enveloped(data, context, started)
        return self._handle_batch(data, context, started)

    # -- no envelope: one dict per request -----------------------------------------------------------

    def _handle_batch(self, requests: Sequence[Mapping[str, Any]], context: Any, started: float) -> list[Any]:
        core = self._core()
        decoded: list[list[Any] | None] = []
        counts: list[int] = []  # instances per request, refused ones included, for the logs
        errors: dict[int, InputError] = {}
        for idx, request in enumerate(requests):
            instances: list[Any] = []
            try:
                instances = core.read_request(body_of(request))
                decoded.append(core.decode_instances(instances))
            except InputError as err:
                decoded.append(None)
                errors[idx] = err
            except Exception as err:  # one request's body must never fail its whole batch
                # Decoding touches only this request's own data, so whatever it raised (an unforeseen
                # ValueError, RecursionError, MemoryError...) is this request's problem: answer it 400.
                decoded.append(None)
                errors[idx] = InputError(f"request could not be decoded ({type(err).__name__})")
            counts.append(len(instances))

        try:
            predictions = core.predict_decoded([item for request in decoded if request for item in request])
        except Exception as err:
            # Not the client's fault: TorchServe answers the whole batch 503 and keeps the worker.
            self._log_batch(context, counts, errors, started, failure=err)
            raise

        answers: list[Any] = []
        cursor = 0
        for idx, request_instances in enumerate(decoded):
            context.set_response_content_type(idx, "application/json")
            if request_instances is None:
                err = errors[idx]
                context.set_response_status(err.http_status, reason_phrase(err.message), idx)
                answers.append(encode_json(error_body(err)))
                continue
            answers.append(encode_json(v1_response(predictions[cursor : cursor + len(request_instances)])))
            cursor += len(request_instances)
        self._log_batch(context, counts, errors, started)
        return answers

    def _log_batch(
        self,
        context: Any,
        counts: Sequence[int],
        errors: Mapping[int, InputError],
        started: float,
        failure: Exception | None = None,
    ) -> None:
        latency_ms = (time.perf_counter() - started) * 1000
        for idx, count in enumerate(counts):
            if failure is not None:
                status, error_type = 503, type(failure).__name__
            elif idx in errors:
                status, error_type = errors[idx].http_status, type(errors[idx]).__name__
            else:
                status, error_type = 200, None
            self._log(context, idx, status, latency_ms, count, len(counts), error_type)

    # -- kserve envelope: the first request's instances ------------------------------------------------

    def _handle_enveloped(self, instances: list[Any] | None, context: Any, started: float) -> list[Prediction]:
        core = self._core()
        try:
            if instances is None:
                raise InputError('request body has no "instances": send {"instances": [...]}')
            predictions = core.predict(instances)
        except InputError as err:
            self._log(context, 0, err.http_status, (time.perf_counter() - started) * 1000,
                      len(instances or ()), 1, type(err).__name__)
            raise PredictionException(err.message, err.http_status) from err
        self._log(context, 0, 200, (time.perf_counter() - started) * 1000, len(instances), 1, None)
        # The envelope wraps this list into {"predictions": [...]}.
        return predictions

    # -- helpers ----------------------------------------------------------------------------------------

    def _core(self) -> ModelCore[Any]:
        if self.core is None:
            raise RuntimeError("handle() called before initialize()")
        return self.core

    def _log(
        self,
        context: Any,
        idx: int,
        status: int,
        latency_ms: float,
        instances: int,
        batch_requests: int,
        error_type: str | None,
    ) -> None:
        if self.request_logger is None:
            return
        request_id = context.get_request_id(idx) if hasattr(context, "get_request_id") else None
        log_request(
            self.request_logger,
            RequestRecord(
                request_id=request_id or "",
                model_name=self.model_name,
                model_version=self.model_version,
                runtime=RUNTIME,
                status=status,
                latency_ms=latency_ms,
                instances=instances,
                batch_requests=batch_requests,
                error_type=error_type,
            ),
        )
