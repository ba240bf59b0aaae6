"""Errors a model raises on purpose, each mapping to one HTTP status."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

# More problems than this make an unreadable message; the rest are counted, not listed.
MAX_LISTED_PROBLEMS = 5


class InputError(ValueError):
    """A request the model cannot serve as sent; HTTP servers answer 400 Bad Request.

    The message names where the problem is (``instances[1]``, ``instances[0].k``) and what is wrong,
    and never needs a stack trace to be understood. Raised before the model runs, so a bad request
    never costs a forward pass and never takes a worker down.

    Attributes:
        message: The whole message, several problems joined by ``"; "``.
        problems: Each problem on its own, in request order.
    """

    http_status: ClassVar[int] = 400

    def __init__(self, message: str, *, problems: Sequence[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.problems: tuple[str, ...] = tuple(problems) if problems else (message,)

    @classmethod
    def from_problems(cls, problems: Sequence[str]) -> InputError:
        """One error for several problems, listing the first few and counting the rest."""
        if not problems:
            raise ValueError("from_problems needs at least one problem")
        listed = list(problems[:MAX_LISTED_PROBLEMS])
        hidden = len(problems) - len(listed)
        if hidden:
            listed.append(f"and {hidden} more problem{'s' if hidden > 1 else ''}")
        return cls("; ".join(listed), problems=problems)

    def __str__(self) -> str:
        return self.message
