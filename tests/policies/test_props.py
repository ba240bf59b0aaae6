"""Reading numbers, counts and quantities from engine properties: whatever the value, an answer, never an error."""

from __future__ import annotations

import math

import pytest
from pulumi_policy.proxy import unknown_checking_proxy

from policies.props import count, describe, number, quantity

HOSTILE = [None, "", "abc", "4Gi", "²", "1e400", float("nan"), float("inf"), -float("inf"), 10**400, True, [], {},
           unknown_checking_proxy({"a": [1.0]})]


@pytest.mark.parametrize("value", HOSTILE, ids=repr)
def test_numbers_are_finite_and_never_raise(value):
    assert math.isfinite(number(value))
    assert number(value, default=7) in (7, number(value))
    found = quantity(value)
    assert found is None or math.isfinite(found)


@pytest.mark.parametrize("value", [None, "", "abc", "4Gi", "²", " 3.5", "-1", -1.0, 2.5, float("nan"),
                                   float("inf"), 10**400, True, False, [], {}], ids=repr)
def test_anything_but_a_whole_number_of_zero_or_more_is_no_count(value):
    assert count(value) is None


@pytest.mark.parametrize(("value", "expected"), [(3.0, 3), (0.0, 0), ("3", 3), (" 12 ", 12), (10**12, 10**12)])
def test_counts_read_engine_floats_and_digit_strings(value, expected):
    assert count(value) == expected


def test_quantities_keep_their_units_and_numbers_their_values():
    assert quantity("500m") == 0.5
    assert quantity("4Gi") == 4 * 2**30
    assert quantity(8.0) == 8.0
    assert number("8") == 8.0


def test_messages_show_values_as_written():
    assert describe("abc") == "abc"
    assert describe(None) == "null"
    assert describe(unknown_checking_proxy({"a": [1.0]})) == '{"a": [1.0]}'
    assert describe(float("nan")) == "NaN"
