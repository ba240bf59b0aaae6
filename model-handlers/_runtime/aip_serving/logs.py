"""One structured (ECS JSON) log record per request, and never what the request carried.

Records follow the Elastic Common Schema so the platform's log pipeline indexes them without parsing
rules: ``http.request.id``, ``http.response.status_code``, ``event.duration`` (nanoseconds),
``event.outcome``, ``error.type``, plus the platform's own fields under ``aip.*`` (model name and
version, runtime, latency in milliseconds, instances in the request and requests in the runtime batch).

Payloads are left out on purpose: inputs may be personal data, and error messages can quote input
values, so a rejected request is logged with its error *type* only; the client gets the message.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from typing import TextIO

import ecs_logging

REQUEST_LOGGER = "aip_serving.requests"

# Fields of the stdlib record that say nothing useful per request and cost bytes on every line.
_EXCLUDED_FIELDS = ("log.original", "log.origin", "process", "process.thread")


@dataclass(frozen=True)
class RequestRecord:
    """What one served (or refused) request is remembered by.

    Attributes:
        request_id: The runtime's request id (TorchServe's, or KServe's ``x-request-id``).
        model_name: Model that served it.
        model_version: Version of that model.
        runtime: ``torchserve`` or ``kserve``.
        status: HTTP status the client got.
        latency_ms: Time spent in the model code: decoding, forward pass, encoding.
        instances: Instances in this request (0 when its body could not be read).
        batch_requests: Requests the runtime batched into the same forward pass (TorchServe).
        error_type: Class name of the error when the request was refused or failed.
    """

    request_id: str
    model_name: str
    model_version: str
    runtime: str
    status: int
    latency_ms: float
    instances: int
    batch_requests: int = 1
    error_type: str | None = None


def configure_request_logger(
    stream: TextIO | None = None,
    *,
    level: int = logging.INFO,
    name: str = REQUEST_LOGGER,
) -> logging.Logger:
    """The request logger, writing ECS JSON lines to ``stream`` (stdout by default).

    Idempotent: calling it again replaces the handler it installed instead of adding a second one, so
    a worker that reloads its model does not log every request twice. The logger does not propagate,
    because the runtimes configure the root logger with their own plain-text format.
    """
    logger = logging.getLogger(name)
    for handler in list(logger.handlers):
        if getattr(handler, "_aip_serving", False):
            logger.removeHandler(handler)
    handler = logging.StreamHandler(stream if stream is not None else sys.stdout)
    handler.setFormatter(ecs_logging.StdlibFormatter(exclude_fields=_EXCLUDED_FIELDS))
    handler._aip_serving = True  # type: ignore[attr-defined]  # marks the handler this module owns
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    return logger


def ecs_fields(record: RequestRecord) -> dict[str, object]:
    """The record as dotted ECS field names (the formatter nests them)."""
    fields: dict[str, object] = {
        "http.request.id": record.request_id,
        "http.response.status_code": record.status,
        "event.kind": "event",
        "event.category": ["web"],
        "event.outcome": "success" if record.status < 400 else "failure",
        "event.duration": int(record.latency_ms * 1_000_000),
        "aip.model.name": record.model_name,
        "aip.model.version": record.model_version,
        "aip.runtime": record.runtime,
        "aip.latency_ms": round(record.latency_ms, 3),
        "aip.batch.instances": record.instances,
        "aip.batch.requests": record.batch_requests,
    }
    if record.error_type:
        fields["error.type"] = record.error_type
    return fields


def log_request(logger: logging.Logger, record: RequestRecord) -> None:
    """Write one record: INFO when served, WARNING when refused (4xx), ERROR when failed (5xx)."""
    if record.status >= 500:
        level, message = logging.ERROR, "inference request failed"
    elif record.status >= 400:
        level, message = logging.WARNING, "inference request refused"
    else:
        level, message = logging.INFO, "inference request served"
    logger.log(level, message, extra=ecs_fields(record))
