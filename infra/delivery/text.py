"""Text from outside (a server's answer, a value a person typed) as the delivery commands' messages quote it."""

from __future__ import annotations

import re

# Control characters (escape sequences included) of a server's text must not reach the terminal.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def quoted(text: object, limit: int = 300) -> str:
    """A server's text for a message: on one line, without control characters, at most ``limit`` characters."""
    return _cut(" ".join(_CONTROL.sub(" ", str(text)).split()), limit)


def shown(value: object, limit: int = 80) -> str:
    """A value as a message quotes it: repr() shows its spaces and control characters; at most ``limit`` characters."""
    return _cut(repr(value), limit)


__all__ = ["quoted", "shown"]
