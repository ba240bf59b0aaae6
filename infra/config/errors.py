"""Configuration problems: collected together, each naming key path, value and what is allowed."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi

# A validator that checks one field of a nested object prefixes its message with this mark and the
# field name ("\x00natGateways: ..."), so the problem points at that field rather than its parent.
SUBKEY_MARK = "\x00"

NOT_SET = object()

# What people write for a boolean that YAML 1.2 (the engine's) reads as text.
_WORDS_FOR_BOOLEANS = frozenset({"true", "false", "yes", "no", "on", "off", "y", "n"})
# A value longer than this is shown cut short: a pasted file or a runaway string would drown the other problems.
MAX_SHOWN_CHARS = 1000


def problems_at_subkeys(problems: Sequence[tuple[str, str]]) -> str:
    """The message of a validator that found several problems, each at its own sub-key ("" for the key it validates).

    Raise ``ValueError(problems_at_subkeys(found))``: the loader reports each one, with the value at its key, rather
    than the first alone.
    """
    return "".join(f"{SUBKEY_MARK}{key}: {message}" for key, message in problems)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a stack's configuration."""

    key: str
    message: str
    value: Any = NOT_SET

    def render(self) -> str:
        shown = "(not set)" if self.value is NOT_SET else json.dumps(self.value, default=str)
        if len(shown) > MAX_SHOWN_CHARS:
            shown = f"{shown[:MAX_SHOWN_CHARS]}... ({len(shown)} characters)"
        return f"{self.key} = {shown}: {self.message}"


class ConfigError(pulumi.RunError):
    """Invalid stack configuration; Pulumi prints RunError messages without a traceback."""

    def __init__(self, stack_file: str, problems: Sequence[Problem]):
        self.stack_file = stack_file
        self.problems = tuple(problems)
        count = len(self.problems)
        lines = [f"{stack_file}: {count} configuration problem{'s' if count != 1 else ''}:"]
        lines += [f"  - {p.render()}" for p in self.problems]
        super().__init__("\n".join(lines))


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def join_path(prefix: str, loc: Sequence[str | int]) -> str:
    path = prefix
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def describe_error(error: dict[str, Any], allowed_keys: Sequence[str]) -> str:
    """Turn one pydantic error into a sentence that says what is allowed."""
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "missing":
        return "required key is not set"
    if kind == "extra_forbidden":
        name = str(error["loc"][-1])
        return f"unknown key{did_you_mean(name, allowed_keys)}; allowed keys: {', '.join(allowed_keys)}"
    if kind == "literal_error":
        return "must be one of: " + str(ctx.get('expected', '')).replace("'", "").replace(" or ", ", ")
    if kind in {"int_type", "int_parsing"}:
        return "must be a whole number"
    if kind == "bool_type":
        if isinstance(error.get("input"), str) and error["input"].lower() in _WORDS_FOR_BOOLEANS:
            return "must be true or false, unquoted (the stack file's YAML reads yes, on and quoted words as text)"
        return "must be true or false"
    if kind == "string_type":
        return "must be a string"
    if kind in {"model_type", "dict_type", "model_attributes_type"}:
        return "must be a mapping of keys to values"
    if kind in {"tuple_type", "list_type"}:
        return "must be a list"
    if kind == "greater_than":
        return f"must be greater than {ctx['gt']}"
    if kind == "greater_than_equal":
        return f"must be at least {ctx['ge']}"
    if kind == "less_than_equal":
        return f"must be at most {ctx['le']}"
    if kind == "too_short":
        return f"must have at least {ctx['min_length']} item{'s' if ctx['min_length'] != 1 else ''}"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "string_too_long":
        return f"must be at most {ctx['max_length']} characters"
    if kind == "string_pattern_mismatch":
        return f"must match {ctx['pattern']}"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")
