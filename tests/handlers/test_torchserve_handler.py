"""The TorchServe handlers, driven the way TorchServe 0.12's worker drives them, without Java."""

from __future__ import annotations

import json
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
    (answer,) = handler.handle([raw], context)
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
    answers = handler.handle(data, context)

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
    answers = handler.handle([{"body": body([])}, {"body": {"inputs": []}}], context)
    assert calls == []
    assert [context.status(i) for i in range(2)] == [400, 400]
    assert answers[0]["message"] == '"instances" is empty: send at least one instance'


def test_the_limit_applies_per_request_not_per_batch(digits_trained: Trained) -> None:
    handler, context = start(digits_trained, model_yaml_config={"maxBatchInstances": 2})
    answers = handler.handle([{"body": body([BLANK] * 2)}, {"body": body([BLANK] * 2)},
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
    answers = handler.handle([{"body": huge}, {"body": body([BLANK])}, {"body": huge.decode()}], context)
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
    answers = handler.handle([{"body": "boom"}, {"body": body([BLANK])}], context)
    assert context.statuses[0] == (400, "request could not be decoded (RecursionError)")
    assert answers[0] == {"code": 400, "type": "InputError", "message": "request could not be decoded (RecursionError)"}
    assert context.status(1) == 200 and len(answers[1]["predictions"]) == 1


def test_a_huge_unknown_key_is_a_normal_400(digits_trained: Trained, ranker_trained: Trained) -> None:
    key = "k" * 150_000
    handler, context = start(digits_trained)
    (answer,) = handler.handle([{"body": {"instances": [BLANK], key: 1, "a": 2}}], context)
    code, phrase = context.statuses[0]
    assert code == 400 and len(answer["message"]) < 300
    assert answer["message"] == f'unknown top-level fields "a", "{"k" * 64}\u2026" (allowed: instances)'
    assert phrase == f'unknown top-level fields "a", "{"k" * 64}..." (allowed: instances)'

    handler, context = start(ranker_trained)
    extra = {f"{i:03d}" + "x" * 1000: i for i in range(20)}
    (answer,) = handler.handle([{"body": body([{"user_id": 1, **extra}])}], context)
    assert context.status(0) == 400 and len(answer["message"]) < 600
    assert answer["message"].startswith('instances[0]: unknown fields "000' + "x" * 61 + '\u2026", "001')
    assert "and 15 more (allowed: " in answer["message"]
    assert len(context.statuses[0][1]) <= 128


def test_the_ranker_handler_splits_answers_per_request(ranker_trained: Trained) -> None:
    handler, context = start(ranker_trained)
    answers = handler.handle(
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
    assert len(handler.handle([{"body": body([BLANK])}], context)[0]["predictions"]) == 1


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
    form, good = handler.handle([{"instances": value}, {"body": body([BLANK])}], context)
    assert form["type"] == "InputError" and form["code"] == 400
    assert "raw JSON body" in form["message"] and "instances" in form["message"]
    assert context.get_response_status(0)[0] == 400
    assert context.get_response_status(1) == (200, None) and len(good["predictions"]) == 1


def test_a_form_with_raw_bytes_is_an_input_error_without_request_properties(digits_trained: Trained) -> None:
    handler, context = start(digits_trained)
    (answer,) = handler.handle([{"instances": bytearray(b"1")}], context)
    assert context.status(0) == 400 and answer["type"] == "InputError"
