"""User errors of `aip package` / `aip serve`: one exception, every problem in one message."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence


class ServingError(Exception):
    """A problem the user can fix (bad model folder, unknown model name, missing tool).

    The CLI prints the message without a traceback and exits 2; anything else that goes wrong is
    a bug or an environment failure and keeps its traceback.
    """


class ModelSelectionError(ServingError):
    """A model name that is not a folder under model-handlers/."""


class BuildFailed(ServingError):
    """Training or archiving a model failed; the message ends with the tool's last output lines."""


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def bullet_list(header: str, problems: Sequence[str]) -> str:
    return "\n".join([header, *(f"  - {p}" for p in problems)])
