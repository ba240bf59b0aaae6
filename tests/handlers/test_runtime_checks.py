"""aip_serving's value checks, v1 body decoding and InputError: each bad input and its exact message."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest


@pytest.fixture(scope="module")
def rt(runtime_on_path: None) -> Any:
    import aip_serving.checks
    import aip_serving.errors
    import aip_serving.protocol

    class Runtime:
        checks = aip_serving.checks
        errors = aip_serving.errors
        protocol = aip_serving.protocol

    return Runtime


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("3", "x: expected a number, got string"),
        (True, "x: expected a number, got boolean"),
        (None, "x: expected a number, got null"),
        ([1], "x: expected a number, got array"),
        (math.nan, "x: expected a finite number, got NaN"),
        (math.inf, "x: expected a finite number, got Infinity"),
        (-math.inf, "x: expected a finite number, got -Infinity"),
        (17, "x: expected a value in [0, 16], got 17"),
        (-0.5, "x: expected a value in [0, 16], got -0.5"),
    ],
)
def test_finite_number_refuses(rt: Any, value: Any, message: str) -> None:
    with pytest.raises(rt.errors.InputError) as caught:
        rt.checks.finite_number("x", value, low=0, high=16)
    assert str(caught.value) == message


def test_finite_numbers_names_the_failing_element(rt: Any) -> None:
    assert rt.checks.finite_numbers("p", [0, 1.5, 16], low=0, high=16) == [0.0, 1.5, 16.0]
    with pytest.raises(rt.errors.InputError, match=r"^p\[2\]: expected a number, got boolean$"):
        rt.checks.finite_numbers("p", [0, 1, False], low=0, high=16)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("1", "k: expected an integer, got string"),
        (True, "k: expected an integer, got boolean"),
        (2.0, "k: expected an integer, got number 2"),
        (0, "k: expected an integer in [1, 100], got 0"),
        (101, "k: expected an integer in [1, 100], got 101"),
    ],
)
def test_integer_refuses(rt: Any, value: Any, message: str) -> None:
    with pytest.raises(rt.errors.InputError) as caught:
        rt.checks.integer("k", value, low=1, high=100)
    assert str(caught.value) == message


def test_boolean_and_object_checks(rt: Any) -> None:
    with pytest.raises(rt.errors.InputError, match=r"^b: expected true or false, got number$"):
        rt.checks.boolean("b", 1)
    spec = {"required": ("a",), "optional": ("b",), "example": '{"a": 1}'}
    with pytest.raises(rt.errors.InputError, match=r'^o: unknown fields "c", "d" \(allowed: a, b\)$'):
        rt.checks.json_object("o", {"a": 1, "c": 2, "d": 3}, **spec)
    with pytest.raises(rt.errors.InputError, match=r'^o: missing "a"$'):
        rt.checks.json_object("o", {"b": 1}, **spec)
    with pytest.raises(rt.errors.InputError, match=r'^o: expected an object like \{"a": 1\}, got array$'):
        rt.checks.json_object("o", [], **spec)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", 'request body is empty: send {"instances": [...]}'),
        (b"\xff\xfe", "request body is not UTF-8 text (invalid byte at position 0)"),
        (b'{"instances": [1,', "request body is not valid JSON: Expecting value at line 1 column 18"),
        ("[1, 2]", 'request body must be a JSON object like {"instances": [...]}, got array'),
        ('"text"', 'request body must be a JSON object like {"instances": [...]}, got string'),
        ({}, 'request body has no "instances": send {"instances": [...]}'),
        ({"instances": [], "inputs": []}, 'unknown top-level field "inputs" (allowed: instances)'),
        ({"instances": {"a": 1}}, '"instances" must be an array, got object'),
        (None, 'request body must be a JSON object like {"instances": [...]}, got null'),
        ("[" * 100_000, "request body is nested too deeply to parse"),
        # json.loads raises a plain ValueError, not JSONDecodeError, for an integer over 4300 digits.
        (b'{"instances": [' + b"7" * 4301 + b"]}",
         "request body is not valid JSON here: a value is out of range (ValueError; integers may have at most "
         "4300 digits)"),
        ("-" + "1" * 10_000, "request body is not valid JSON here: a value is out of range (ValueError; "
         "integers may have at most 4300 digits)"),
        ({"instances": [], "x" * 150_000: 1}, f'unknown top-level field "{"x" * 64}\u2026" (allowed: instances)'),
        ({"instances": [], **{f"f{i}": i for i in range(12)}},
         'unknown top-level fields "f0", "f1", "f10", "f11", "f2" and 7 more (allowed: instances)'),
    ],
)
def test_read_instances_refuses(rt: Any, parser: str, body: Any, message: str) -> None:
    with pytest.raises(rt.errors.InputError) as caught:
        rt.protocol.read_instances(body)
    assert str(caught.value) == message


@pytest.mark.parametrize("body", [b'{"instances": [1, 2]}', bytearray(b'{"instances": [1, 2]}'),
                                  memoryview(b'{"instances": [1, 2]}'), '{"instances": [1, 2]}',
                                  {"instances": [1, 2]}])
def test_read_instances_accepts_every_body_type(rt: Any, parser: str, body: Any) -> None:
    assert rt.protocol.read_instances(body) == [1, 2]


@pytest.mark.parametrize(("body", "expected"), [
    # orjson refuses these; json reads them, and the checks then name the value.
    (b'{"instances": [NaN, -Infinity]}', "[nan, -inf]"),
    (b'{"instances": ["\\ud800"]}', "['\\ud800']"),
    (b'{"instances": [' + b"9" * 400 + b"]}", f"[{'9' * 400}]"),
])
def test_values_only_json_reads_still_reach_the_checks(rt: Any, parser: str, body: bytes, expected: str) -> None:
    assert repr(rt.protocol.read_instances(body)) == expected


def test_an_integer_beyond_64_bits_is_a_float_with_orjson_as_in_kserve(rt: Any, parser: str) -> None:
    """The one value the two parsers read differently; KServe's own decoding (orjson) does the same."""
    (value,) = rt.protocol.read_instances(b'{"instances": [18446744073709551616]}')
    assert value == 2**64 and type(value) is (float if parser == "orjson" else int)


@pytest.mark.parametrize(("value", "expected"), [
    ({"predictions": [{"label": 3, "probabilities": [0.5, 0.125]}]},
     b'{"predictions":[{"label":3,"probabilities":[0.5,0.125]}]}'),
    ({"code": 400, "type": "InputError", "message": 'unknown field "caf\u00e9": x'},
     '{"code":400,"type":"InputError","message":"unknown field \\"caf\u00e9\\": x"}'.encode()),
])
def test_encode_json_is_compact(rt: Any, parser: str, value: Any, expected: bytes) -> None:
    encoded = rt.protocol.encode_json(value)
    assert isinstance(encoded, bytes) and json.loads(encoded) == value
    if parser == "orjson":
        assert encoded == expected
    else:  # json escapes non-ASCII
        assert encoded == json.dumps(value, separators=(",", ":")).encode()


def test_encode_json_quotes_back_what_only_json_could_read(rt: Any, parser: str) -> None:
    """A lone surrogate (json reads it in a body, a message may quote it) and non-string keys."""
    for value in ({"message": 'unknown field "\ud800"'}, {1: "a"}):
        encoded = rt.protocol.encode_json(value)
        assert encoded == json.dumps(value, separators=(",", ":")).encode()


@pytest.fixture(params=["orjson", "json"])
def parser(request: pytest.FixtureRequest, rt: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both parsers of aip_serving.protocol: orjson where installed (it comes with KServe), json without."""
    if request.param == "json":
        monkeypatch.setattr(rt.protocol, "orjson", None)
    else:
        # kserve==0.16.0 (pyproject) brings orjson: its path must be tested, never skipped.
        assert rt.protocol.orjson is not None, "orjson is missing: reinstall the project (make install)"
    return request.param


def test_input_error_lists_a_few_problems_and_counts_the_rest(rt: Any) -> None:
    problems = [f"instances[{i}]: bad" for i in range(8)]
    err = rt.errors.InputError.from_problems(problems)
    assert str(err) == "; ".join(problems[:5]) + "; and 3 more problems"
    assert err.problems == tuple(problems)
    assert err.http_status == 400


def test_unknown_keys_are_cut_and_counted(rt: Any) -> None:
    with pytest.raises(rt.errors.InputError) as caught:
        rt.checks.json_object("instances[0]", {"é" * 100: 1, "k": 2}, required=["k"], example="{}")
    assert str(caught.value) == f'instances[0]: unknown field "{"é" * 64}\u2026" (allowed: k)'
    assert rt.checks.quoted_keys(["a" * 64]) == f'"{"a" * 64}"'
    assert rt.checks.quoted_keys(list("abcdefg")) == '"a", "b", "c", "d", "e" and 2 more'


def test_decode_body_turns_any_value_error_into_an_input_error(rt: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(text: str) -> Any:
        raise ValueError("Exceeds the limit (4300 digits) for integer string conversion")

    monkeypatch.setattr(rt.protocol, "orjson", None)
    monkeypatch.setattr(rt.protocol.json, "loads", refuse)
    with pytest.raises(rt.errors.InputError, match="a value is out of range"):
        rt.protocol.decode_body("{}")
