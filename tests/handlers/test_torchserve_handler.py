"""The TorchServe handlers, driven the way TorchServe 0.12's worker drives them, without Java."""

from __future__ import annotations

import io
import json
import re
import struct
from collections.abc import Iterator
from typing import Any

import pytest
import torch

from tests.handlers.conftest import MockContext, Trained

BLANK = [0] * 64


def start(trained: Trained, **context_args: Any) -> tuple[Any, MockContext]:
    """A handler initialised the way the worker does it: instantiate, then ``initialize(context)``."""
    classes = {"digits": "DigitsHandler", "ranker": "RankerHandler"}
    handler = getattr(trained.folder.handler, classes[trained.folder.name])()
    context = MockContext(trained.model_dir, trained.folder.name, **context_args)
    handler.initialize(context)
    return handler, context


def body(instances: list[Any]) -> dict[str, Any]:
    return {"instances": instances}


JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')


def served(handler: Any, data: list[Any], context: Any) -> list[Any]:
    """``handler.handle`` without an envelope: every answer is compact JSON bytes, returned here parsed.

    Bytes go out as they are; anything else TorchServe would ``json.dumps`` with ``indent=2``.
    """
    answers = handler.handle(data, context)
    for answer in answers:
        assert isinstance(answer, bytes), type(answer)
        assert not re.search(rb"\s", JSON_STRING.sub(b'""', answer)), answer[:200]  # no space outside strings
    return [json.loads(answer) for answer in answers]


def test_handler_module_defines_exactly_one_class(trained: dict[str, Trained]) -> None:
    from ts.utils.util import list_classes_from_module

    for model in trained.values():
        assert len(list_classes_from_module(model.folder.handler)) == 1, model.folder.name


def test_initialize_loads_weights_on_the_cpu_and_reads_the_yaml_limit(digits_trained: Trained) -> None:
    handler, _ = start(digits_trained, model_yaml_config={"maxBatchInstances": 3}, gpu_id=0)
    assert handler.initialized
    expected = torch.device("cuda:0") if torch.cuda.is_available() else torch.device("cpu")
    assert handler.device == expected
    assert handler.core.max_batch_instances == 3
    assert not handler.model.training
    assert handler.model_version == "1.0"


def test_initialize_refuses_a_bad_yaml_limit(digits_trained: Trained) -> None:
    with pytest.raises(ValueError, match="maxBatchInstances must be a positive integer, got 0"):
        start(digits_trained, model_yaml_config={"maxBatchInstances": 0})


@pytest.fixture
def torch_threads_restored() -> Iterator[int]:
    """torch's intra-op thread count before the test, set back afterwards (it belongs to the process)."""
    before = torch.get_num_threads()
    yield before
    torch.set_num_threads(before)


def test_initialize_sets_torch_threads_before_loading(digits_trained: Trained, torch_threads_restored: int,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    wanted = 1 if torch_threads_restored != 1 else 2
    core_class = digits_trained.folder.core.DigitsCore
    load = core_class.load.__func__
    seen: list[int] = []

    def recording_load(cls: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(torch.get_num_threads())
        return load(cls, *args, **kwargs)

    monkeypatch.setattr(core_class, "load", classmethod(recording_load))
    handler, _ = start(digits_trained, model_yaml_config={"torchThreads": wanted})
    assert handler.initialized and seen == [wanted] and torch.get_num_threads() == wanted


def test_initialize_leaves_torch_threads_alone_when_unset(digits_trained: Trained, torch_threads_restored: int) -> None:
    start(digits_trained, model_yaml_config={"torchThreads": None})
    assert torch.get_num_threads() == torch_threads_restored


@pytest.mark.parametrize("value", [0, 257, "2", 2.0, True])
def test_initialize_refuses_a_bad_torch_threads(digits_trained: Trained, torch_threads_restored: int,
                                                value: Any) -> None:
    with pytest.raises(ValueError) as caught:
        start(digits_trained, model_yaml_config={"torchThreads": value})
    assert str(caught.value) == f"model-config.yaml: torchThreads must be an integer from 1 to 256, got {value!r}"
    assert torch.get_num_threads() == torch_threads_restored


@pytest.mark.parametrize(
    "raw",
    [
        {"body": body([BLANK])},
        {"body": json.dumps(body([BLANK])).encode()},
        {"body": bytearray(json.dumps(body([BLANK])).encode())},
        {"body": json.dumps(body([BLANK]))},
        {"data": json.dumps(body([BLANK])).encode()},
    ],
    ids=["dict", "bytes", "bytearray", "str", "data-field"],
)
def test_every_body_type_is_served(digits_trained: Trained, raw: dict[str, Any]) -> None:
    handler, context = start(digits_trained)
    (answer,) = served(handler, [raw], context)
    assert context.status(0) == 200
    assert len(answer["predictions"]) == 1
    assert set(answer["predictions"][0]) == {"label", "probabilities"}
    assert context.content_types[0] == "application/json"


def test_a_batch_with_one_bad_request_serves_the_others_in_one_forward_pass(digits_trained: Trained) -> None:
    handler, context = start(digits_trained)
    calls: list[int] = []
    handler.model.register_forward_hook(lambda module, args, output: calls.append(len(args[0])))
    data = [
        {"body": body([BLANK, BLANK])},
        {"body": body([BLANK[:63]])},
        {"body": b"not json"},
        {"body": json.dumps(body([BLANK, BLANK, BLANK])).encode()},
    ]
    answers = served(handler, data, context)

    assert len(answers) == len(data)
    assert calls == [5]  # the 2 + 3 valid instances together
    assert [len(a["predictions"]) for a in (answers[0], answers[3])] == [2, 3]
    assert context.statuses[1] == (400, "instances[0]: expected 64 numbers (an 8x8 image), got 63")
    assert answers[1] == {"code": 400, "type": "InputError",
                          "message": "instances[0]: expected 64 numbers (an 8x8 image), got 63"}
    assert context.status(2) == 400
    assert answers[2]["message"].startswith("request body is not valid JSON")
    assert 0 not in context.statuses and 3 not in context.statuses


def test_a_batch_of_only_bad_requests_runs_no_forward_pass(digits_trained: Trained) -> None:
    handler, context = start(digits_trained)
    calls: list[int] = []
    handler.model.register_forward_hook(lambda module, args, output: calls.append(1))
    answers = served(handler, [{"body": body([])}, {"body": {"inputs": []}}], context)
    assert calls == []
    assert [context.status(i) for i in range(2)] == [400, 400]
    assert answers[0]["message"] == '"instances" is empty: send at least one instance'


def test_the_limit_applies_per_request_not_per_batch(digits_trained: Trained) -> None:
    handler, context = start(digits_trained, model_yaml_config={"maxBatchInstances": 2})
    answers = served(handler, [{"body": body([BLANK] * 2)}, {"body": body([BLANK] * 2)},
                                {"body": body([BLANK] * 3)}], context)
    assert [context.status(i) for i in range(3)] == [200, 200, 400]
    assert answers[2]["message"] == '"instances" has 3 instances, more than the limit of 2 per request'


def test_reason_phrase_is_one_short_line_of_printable_ascii(digits_trained: Trained) -> None:
    from aip_serving.torchserve import reason_phrase

    assert reason_phrase("a\r\nb  c") == "a b c"
    assert reason_phrase("caf\u00e9") == "caf?"
    assert reason_phrase("a\x00b\x1bc\x7fd\x85e") == "a?b?c?d e"  # NUL, ESC, DEL; U+0085 is whitespace
    assert reason_phrase('"key\u2026"') == '"key..."'
    assert len(reason_phrase("x" * 500)) == 128 and reason_phrase("x" * 500).endswith("...")
    assert all(" " <= char <= "~" for char in reason_phrase("".join(map(chr, range(0x3000)))))


def test_a_huge_integer_is_a_400_for_its_request_only(digits_trained: Trained) -> None:
    """json.loads raises a plain ValueError (not JSONDecodeError) for an integer over 4300 digits."""
    handler, context = start(digits_trained)
    huge = b'{"instances": [[' + b"1" * 5000 + b"]]}"
    answers = served(handler, [{"body": huge}, {"body": body([BLANK])}, {"body": huge.decode()}], context)
    assert [context.status(i) for i in range(3)] == [400, 200, 400]
    assert answers[0]["message"].startswith("request body is not valid JSON here: a value is out of range")
    assert len(answers[1]["predictions"]) == 1


def test_any_error_while_decoding_one_request_is_a_400_for_that_request_only(
    digits_trained: Trained, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler, context = start(digits_trained)
    original = handler.core.read_request

    def fragile(raw: Any) -> Any:
        if raw == "boom":
            raise RecursionError("maximum recursion depth exceeded")
        return original(raw)

    monkeypatch.setattr(handler.core, "read_request", fragile)
    answers = served(handler, [{"body": "boom"}, {"body": body([BLANK])}], context)
    assert context.statuses[0] == (400, "request could not be decoded (RecursionError)")
    assert answers[0] == {"code": 400, "type": "InputError", "message": "request could not be decoded (RecursionError)"}
    assert context.status(1) == 200 and len(answers[1]["predictions"]) == 1


def test_a_huge_unknown_key_is_a_normal_400(digits_trained: Trained, ranker_trained: Trained) -> None:
    key = "k" * 150_000
    handler, context = start(digits_trained)
    (answer,) = served(handler, [{"body": {"instances": [BLANK], key: 1, "a": 2}}], context)
    code, phrase = context.statuses[0]
    assert code == 400 and len(answer["message"]) < 300
    assert answer["message"] == f'unknown top-level fields "a", "{"k" * 64}\u2026" (allowed: instances)'
    assert phrase == f'unknown top-level fields "a", "{"k" * 64}..." (allowed: instances)'

    handler, context = start(ranker_trained)
    extra = {f"{i:03d}" + "x" * 1000: i for i in range(20)}
    (answer,) = served(handler, [{"body": body([{"user_id": 1, **extra}])}], context)
    assert context.status(0) == 400 and len(answer["message"]) < 600
    assert answer["message"].startswith('instances[0]: unknown fields "000' + "x" * 61 + '\u2026", "001')
    assert "and 15 more (allowed: " in answer["message"]
    assert len(context.statuses[0][1]) <= 128


def test_the_ranker_handler_splits_answers_per_request(ranker_trained: Trained) -> None:
    handler, context = start(ranker_trained)
    answers = served(
        handler,
        [{"body": body([{"user_id": 1, "k": 2}])}, {"body": body([{"user_id": 1000}])},
         {"body": body([{"user_id": 3}, {"user_id": 4, "k": 1}])}],
        context,
    )
    assert [len(p["items"]) for p in answers[0]["predictions"]] == [2]
    assert context.statuses[1][0] == 400
    assert [len(p["items"]) for p in answers[2]["predictions"]] == [10, 1]


def test_a_model_failure_fails_the_batch_and_keeps_the_handler(
    digits_trained: Trained, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler, context = start(digits_trained)

    def broken(inputs: Any) -> Any:
        raise RuntimeError("kernel failure")

    monkeypatch.setattr(handler.core, "forward", broken)
    with pytest.raises(RuntimeError, match="kernel failure"):
        handler.handle([{"body": body([BLANK])}], context)
    monkeypatch.undo()
    assert len(served(handler, [{"body": body([BLANK])}], context)[0]["predictions"]) == 1


def test_real_torchserve_context_records_per_request_status(digits_trained: Trained) -> None:
    from ts.context import Context, RequestProcessor

    handler, _ = start(digits_trained)
    manifest = {"model": {"modelName": "digits", "modelVersion": "2.0", "serializedFile": "weights.pt"}}
    context = Context("digits", str(digits_trained.model_dir), manifest, 2, None, "0.12.0",
                      model_yaml_config={})
    context.request_processor = [RequestProcessor({}), RequestProcessor({})]
    context.request_ids = {0: "req-a", 1: "req-b"}
    handler.handle([{"body": body([BLANK])}, {"body": body([])}], context)
    assert context.get_response_status(0) == (200, None)
    assert context.get_response_status(1) == (400, '"instances" is empty: send at least one instance')
    assert context.get_response_content_type(1) == "application/json"


class TestKServeEnvelope:
    """``service_envelope=kserve``: the envelope hands ``handle`` the first request's instances only."""

    def test_batch_size_one_is_served(self, digits_trained: Trained) -> None:
        from ts.torch_handler.request_envelope.kserve import KServeEnvelope

        handler, context = start(digits_trained)
        envelope = KServeEnvelope(handler.handle)
        answers = envelope.handle([{"body": json.dumps(body([BLANK, BLANK])).encode()}], context)
        assert len(answers) == 1 and len(answers[0]["predictions"]) == 2

    def test_bad_input_is_a_400_for_the_request(self, digits_trained: Trained) -> None:
        from ts.torch_handler.request_envelope.kserve import KServeEnvelope
        from ts.utils.util import PredictionException

        handler, context = start(digits_trained)
        envelope = KServeEnvelope(handler.handle)
        for bad, message in [(body([BLANK[:3]]), "instances[0]: expected 64 numbers (an 8x8 image), got 3"),
                             (body([]), '"instances" is empty: send at least one instance'),
                             ({"images": []}, 'request body has no "instances": send {"instances": [...]}')]:
            with pytest.raises(PredictionException) as caught:
                envelope.handle([{"body": bad}], context)
            assert (caught.value.error_code, caught.value.message) == (400, message)

    def test_only_the_first_request_of_a_batch_reaches_the_handler(self, digits_trained: Trained) -> None:
        """The upstream defect: TorchServe then answers 503 "number of batch response mismatched"."""
        from ts.torch_handler.request_envelope.kserve import KServeEnvelope

        handler, context = start(digits_trained)
        envelope = KServeEnvelope(handler.handle)
        answers = envelope.handle([{"body": body([BLANK])}, {"body": body([BLANK, BLANK])}], context)
        assert len(answers) == 1  # two requests in, one answer out


@pytest.mark.parametrize("value", [bytearray(b"1"), "1"], ids=["bytes", "str"])
def test_a_form_body_is_an_input_error_for_its_request(digits_trained: Trained, value: Any) -> None:
    """``application/x-www-form-urlencoded`` ``instances=1``: the fields arrive as the request's dict."""
    from ts.context import Context, RequestProcessor

    handler, _ = start(digits_trained)
    manifest = {"model": {"modelName": "digits", "modelVersion": "1.0", "serializedFile": "weights.pt"}}
    context = Context("digits", str(digits_trained.model_dir), manifest, 2, None, "0.12.0", model_yaml_config={})
    context.request_processor = [RequestProcessor({"instances": {"content-type": ""}}),
                                 RequestProcessor({"body": {"content-type": "application/json"}})]
    form, good = served(handler, [{"instances": value}, {"body": body([BLANK])}], context)
    assert form["type"] == "InputError" and form["code"] == 400
    assert "raw JSON body" in form["message"] and "instances" in form["message"]
    assert context.get_response_status(0)[0] == 400
    assert context.get_response_status(1) == (200, None) and len(good["predictions"]) == 1


def test_a_form_with_raw_bytes_is_an_input_error_without_request_properties(digits_trained: Trained) -> None:
    handler, context = start(digits_trained)
    (answer,) = served(handler, [{"instances": bytearray(b"1")}], context)
    assert context.status(0) == 400 and answer["type"] == "InputError"


class Frames:
    """The worker's socket to the frontend, holding the frames the frontend would send."""

    def __init__(self, data: bytes) -> None:
        self.stream = io.BytesIO(data)

    def recv(self, size: int) -> bytes:
        return self.stream.read(size)


def worker_body(raw: bytes, content_type: str, decode: bool, monkeypatch: pytest.MonkeyPatch) -> Any:
    """What TorchServe 0.12's worker puts under ``"body"``, read by its own frame reader.

    ``decode``: ``TS_DECODE_INPUT_REQUEST`` (the frontend sets it from ``decode_input_request``): false in the
    platform's config.properties (raw bytes), true in a stock TorchServe (``json.loads`` for
    ``application/json``, forwarding the bytes when that fails; UTF-8 text for ``text/*``).
    """
    from ts.protocol.otf_message_handler import _retrieve_input_data

    monkeypatch.setenv("TS_DECODE_INPUT_REQUEST", "true" if decode else "false")
    frames = b"".join(struct.pack("!i", len(part)) + part for part in (b"body", content_type.encode(), raw))
    return _retrieve_input_data(Frames(frames))["value"]


def image(**values: Any) -> str:
    pixels = ["0"] * 64
    for idx, value in values.items():
        pixels[int(idx.removeprefix("p"))] = value
    return "[" + ", ".join(pixels) + "]"


BAD_BODIES = [
    (b"\xff\xfe", "request body is not UTF-8 text (invalid byte at position 0)"),
    (b'{"instances": [1,', "request body is not valid JSON: Expecting value at line 1 column 18"),
    (b"", 'request body is empty: send {"instances": [...]}'),
    (b" \n", 'request body is empty: send {"instances": [...]}'),
    (b"[1, 2]", 'request body must be a JSON object like {"instances": [...]}, got array'),
    (b"{}", 'request body has no "instances": send {"instances": [...]}'),
    (b'{"instances": [], "inputs": []}', 'unknown top-level field "inputs" (allowed: instances)'),
    # orjson cannot read a lone surrogate, json can; the answer must still encode it.
    (b'{"instances": [], "\\ud800": 1}', 'unknown top-level field "\ud800" (allowed: instances)'),
    (b'{"instances": {"a": 1}}', '"instances" must be an array, got object'),
    (b'{"instances": []}', '"instances" is empty: send at least one instance'),
    (b"[" * 100_000, "request body is nested too deeply to parse"),
    (b'{"instances": [' + b"7" * 4301 + b"]}",
     "request body is not valid JSON here: a value is out of range (ValueError; integers may have at most "
     "4300 digits)"),
    (f'{{"instances": [{image(p0="NaN")}]}}'.encode(), "instances[0][0]: expected a finite number, got NaN"),
    (f'{{"instances": [{image(p10="17")}]}}'.encode(), "instances[0][10]: expected a value in [0, 16], got 17"),
]


@pytest.mark.parametrize("parser", ["orjson", "json"])
@pytest.mark.parametrize("content_type", ["application/json", "text/plain"])
@pytest.mark.parametrize("decode", [False, True], ids=["platform", "stock-torchserve"])
def test_every_bad_body_gets_its_message_whatever_the_worker_decoded(
    digits_trained: Trained, monkeypatch: pytest.MonkeyPatch, decode: bool, content_type: str, parser: str
) -> None:
    import aip_serving.protocol

    if parser == "json":
        monkeypatch.setattr(aip_serving.protocol, "orjson", None)
    else:
        # kserve==0.16.0 (pyproject) brings orjson: its path must be tested, never skipped.
        assert aip_serving.protocol.orjson is not None, "orjson is missing: reinstall the project (make install)"
    good = f'{{"instances": [{image()}, {image(p5="16")}]}}'.encode()
    raws = [raw for raw, _ in BAD_BODIES] + [good]
    handler, context = start(digits_trained)
    answers = served(handler, [{"body": worker_body(raw, content_type, decode, monkeypatch)} for raw in raws],
                     context)

    for idx, (_, message) in enumerate(BAD_BODIES):
        assert answers[idx] == {"code": 400, "type": "InputError", "message": message}, idx
        assert context.statuses[idx][0] == 400
    assert context.status(len(BAD_BODIES)) == 200 and len(answers[-1]["predictions"]) == 2
    assert context.content_types == {idx: "application/json" for idx in range(len(raws))}


def test_the_platform_worker_hands_over_bytes_and_a_stock_one_a_dict(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = b'{"instances": [[1]]}'
    assert worker_body(raw, "application/json", False, monkeypatch) == bytearray(raw)
    assert worker_body(raw, "application/json", True, monkeypatch) == {"instances": [[1]]}
    assert worker_body(raw, "text/plain", True, monkeypatch) == raw.decode()
