"""One structured (ECS JSON) log record per request, and never what the request carried.

Records follow the Elastic Common Schema so the platform's log pipeline indexes them without parsing
rules: ``http.request.id``, ``http.response.status_code``, ``event.duration`` (nanoseconds),
``event.outcome``, ``error.type``, plus the platform's own fields under ``aip.*`` (model name and
version, runtime, latency in milliseconds, instances in the request and requests in the runtime batch).

Payloads are left out on purpose: inputs may be personal data, and error messages can quote input
values, so a rejected request is logged with its error *type* only; the client gets the message.

The records are written by ``ecs_logging`` when it is installed (the KServe predictor images), and
otherwise by :class:`EcsJsonFormatter`, a standard-library formatter writing the same line shape: the
TorchServe image ``pytorch/torchserve-kfs:0.12.0`` does not ship ``ecs_logging`` and the platform turns
per-model ``pip install`` off, so a handler must not need it.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import dataclass
from typing import Any, TextIO

try:
    import ecs_logging
except ImportError:  # not in the TorchServe image: EcsJsonFormatter writes the same records
    ecs_logging = None

REQUEST_LOGGER = "aip_serving.requests"
# The ECS version ecs_logging 2.x stamps on its records; the fallback claims the same one.
ECS_VERSION = "1.6.0"
# What every LogRecord carries; anything else on a record came in through ``extra=``.
_STANDARD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}

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
    handler.setFormatter(ecs_formatter())
    handler._aip_serving = True  # type: ignore[attr-defined]  # marks the handler this module owns
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    return logger


def ecs_formatter() -> logging.Formatter:
    """``ecs_logging``'s formatter when it is installed, else :class:`EcsJsonFormatter`."""
    if ecs_logging is not None:
        return ecs_logging.StdlibFormatter(exclude_fields=_EXCLUDED_FIELDS)
    return EcsJsonFormatter()


class EcsJsonFormatter(logging.Formatter):
    """ECS JSON lines with the standard library alone, shaped as ``ecs_logging.StdlibFormatter`` shapes them.

    ``@timestamp`` (UTC, milliseconds), ``log.level`` and ``message`` first, then ``ecs.version``,
    ``log.logger`` and the record's ``extra=`` fields, dotted names nested into objects (``http.request.id``
    becomes ``{"http": {"request": {"id": ...}}}``), keys sorted, no spaces: one line per record. The
    fields :data:`_EXCLUDED_FIELDS` drops from ecs_logging's records are not written in the first place.
    """

    def format(self, record: logging.LogRecord) -> str:
        head = {
            "@timestamp": self.timestamp(record.created),
            "log.level": record.levelname.lower(),
            "message": record.getMessage(),
        }
        rest: dict[str, Any] = {"ecs.version": ECS_VERSION}
        _merge(rest, "log.logger", record.name)
        for name, value in vars(record).items():
            if name not in _STANDARD_ATTRIBUTES and value is not None:
                _merge(rest, name, value)
        if record.exc_info and record.exc_info[0] is not None:
            _merge(rest, "error.type", record.exc_info[0].__name__)
            _merge(rest, "error.message", str(record.exc_info[1]))
            _merge(rest, "error.stack_trace", self.formatException(record.exc_info))
        line = json.dumps(head, separators=(",", ":"), default=str)
        tail = json.dumps(rest, separators=(",", ":"), sort_keys=True, default=str)
        return f"{line[:-1]},{tail[1:]}"

    @staticmethod
    def timestamp(created: float) -> str:
        """``2024-05-01T12:00:00.123Z``, as ecs_logging writes it."""
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{int(created % 1 * 1000):03d}Z"


def _merge(target: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``a.b.c`` as ``target["a"]["b"]["c"]``; ``ecs.version`` is the one name ECS keeps dotted."""
    if dotted == "ecs.version":
        target[dotted] = value
        return
    *parents, leaf = dotted.split(".")
    for part in parents:
        child = target.get(part)
        if not isinstance(child, dict):
            child = target[part] = {}
        target = child
    if isinstance(value, dict) and isinstance(target.get(leaf), dict):
        target[leaf].update(value)
    else:
        target[leaf] = value


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
