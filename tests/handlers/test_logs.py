"""One ECS JSON record per request, with the fields operations need and none of the payload."""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

import pytest

from tests.handlers.conftest import MockContext, Trained

# Distinctive values that must never reach a log line, even when an error message quotes them.
SECRET_PIXEL = 13.375
SECRET_BAD_PIXEL = 99.125


@pytest.fixture
def log_stream() -> Any:
    from aip_serving.logs import configure_request_logger

    stream = io.StringIO()
    yield stream
    configure_request_logger()  # back to stdout for the other tests


def records(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_torchserve_logs_one_record_per_request_without_payload(digits_trained: Trained, log_stream: Any) -> None:
    from aip_serving.logs import configure_request_logger

    handler = digits_trained.folder.handler.DigitsHandler()
    context = MockContext(digits_trained.model_dir, "digits", request_ids={0: "req-0", 1: "req-1"})
    handler.initialize(context)
    configure_request_logger(log_stream)
    good = {"instances": [[SECRET_PIXEL] * 64, [0] * 64]}
    bad = {"instances": [[SECRET_BAD_PIXEL] * 64]}
    answers = handler.handle([{"body": good}, {"body": bad}], context)
    assert str(SECRET_BAD_PIXEL) in json.loads(answers[1])["message"]  # the client is told...

    served, refused = records(log_stream)
    text = log_stream.getvalue()
    assert str(SECRET_PIXEL) not in text and str(SECRET_BAD_PIXEL) not in text  # ...the log is not
    assert served["message"] == "inference request served"
    assert served["log.level"] == "info"
    assert served["http"] == {"request": {"id": "req-0"}, "response": {"status_code": 200}}
    assert served["aip"]["model"] == {"name": "digits", "version": "1.0"}
    assert served["aip"]["runtime"] == "torchserve"
    assert served["aip"]["batch"] == {"instances": 2, "requests": 2}
    assert served["aip"]["latency_ms"] > 0
    assert served["event"]["duration"] == pytest.approx(served["aip"]["latency_ms"] * 1e6, rel=1e-2)
    assert served["event"]["outcome"] == "success"
    assert "@timestamp" in served and served["ecs.version"]
    assert refused["aip"]["batch"] == {"instances": 1, "requests": 2}
    assert refused["log.level"] == "warning"
    assert refused["http"]["response"]["status_code"] == 400
    assert refused["error"] == {"type": "InputError"}
    assert refused["event"]["outcome"] == "failure"


def test_kserve_logs_the_request_id_header(ranker_trained: Trained, log_stream: Any) -> None:
    from aip_serving.logs import configure_request_logger

    model = ranker_trained.folder.predictor.RankerModel("ranker", ranker_trained.model_dir)
    model.load()
    configure_request_logger(log_stream)
    asyncio.run(model.predict({"instances": [{"user_id": 417, "k": 3}]}, {"x-request-id": "abc-123"}))
    (record,) = records(log_stream)
    assert record["http"]["request"]["id"] == "abc-123"
    assert record["aip"]["runtime"] == "kserve"
    assert record["aip"]["batch"]["instances"] == 1
    assert "417" not in log_stream.getvalue()


def test_configuring_twice_does_not_duplicate_records(log_stream: Any) -> None:
    from aip_serving.logs import RequestRecord, configure_request_logger, log_request

    configure_request_logger(log_stream)
    logger = configure_request_logger(log_stream)
    log_request(logger, RequestRecord("r", "m", "1", "kserve", 503, 1.5, 2, error_type="RuntimeError"))
    (record,) = records(log_stream)
    assert record["log.level"] == "error" and record["message"] == "inference request failed"
    assert not logger.propagate


def test_the_stdlib_fallback_writes_the_same_record_as_ecs_logging(
    log_stream: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The TorchServe image has no ecs_logging: the fallback formatter must give the pipeline the same line."""
    import aip_serving.logs as logs

    record = logs.RequestRecord("r-9", "ranker", "2", "torchserve", 200, 3.25, 4, batch_requests=3)
    lines = []
    for ecs_module in (logs.ecs_logging, None):
        monkeypatch.setattr(logs, "ecs_logging", ecs_module)
        stream = io.StringIO()
        logs.log_request(logs.configure_request_logger(stream), record)
        lines.append(stream.getvalue())
    assert isinstance(logs.ecs_formatter(), logs.EcsJsonFormatter)
    with_ecs, fallback = ([line.split(",", 1)[1]] for line in lines)  # all but @timestamp
    assert with_ecs == fallback
    assert json.loads(lines[1])["@timestamp"].endswith("Z")
