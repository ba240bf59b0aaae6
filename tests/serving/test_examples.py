"""Checking a response against an example's expectation (what `aip serve --smoke` reports)."""

from __future__ import annotations

import json

import pytest

from infra.serving.examples import Expectation, check_response, error_message

OK = json.dumps({"predictions": [{"label": 7, "probabilities": [1.0]}, {"label": 1, "probabilities": [1.0]}]})
TORCHSERVE_ERROR = json.dumps({"code": 400, "type": "InputError", "message": '"instances" is empty: send one'})
KSERVE_ERROR = json.dumps({"error": '"instances" is empty: send one'})


@pytest.mark.parametrize(("expect", "status", "text", "problems"), [
    ({"status": 200, "predictions": 2, "keys": ["label"]}, 200, OK, []),
    ({"status": 200, "predictions": 3}, 200, OK, ["2 predictions, expected 3"]),
    ({"status": 200, "keys": ["label", "score"]}, 200, OK, ["prediction 0 lacks score"]),
    ({"status": 200, "match": [{"label": 7}, {"label": 1}]}, 200, OK, []),
    ({"status": 200, "match": [{"label": 7}, {"label": 2}]}, 200, OK,
     ["prediction 1 has {'label': 1}, expected {'label': 2}"]),
    ({"status": 200, "predictions": 1}, 503, "oops",
     ["status 503, expected 200", "response has no list of predictions"]),
    ({"status": 400, "message": '"instances" is empty'}, 400, TORCHSERVE_ERROR, []),
    ({"status": 400, "message": '"instances" is empty'}, 400, KSERVE_ERROR, []),
    ({"status": 400, "message": "too many"}, 400, KSERVE_ERROR,
     ["message '\"instances\" is empty: send one' does not contain 'too many'"]),
    ({"status": 400, "message": "empty"}, 200, OK,
     ["status 200, expected 400", f"message {OK!r} does not contain 'empty'"]),
])
def test_check_response(expect: dict, status: int, text: str, problems: list[str]):
    assert check_response(Expectation.model_validate(expect), status, text) == problems


@pytest.mark.parametrize(("text", "message"), [
    (TORCHSERVE_ERROR, '"instances" is empty: send one'),
    (KSERVE_ERROR, '"instances" is empty: send one'),
    ('{"detail": "Not Found"}', "Not Found"),
    ("plain text", "plain text"),
])
def test_error_message_of_each_runtime(text: str, message: str):
    assert error_message(text) == message
