"""A model's `examples/*.json`: a request and the answer expected, checked against a real response.

Format (model-handlers/README.md):
`{"request": {...}, "expect": {"status": 200, "predictions": 2, "keys": ["label"]}}` or
`{"request": {...}, "expect": {"status": 400, "message": "empty"}}`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from infra.serving.problems import ServingError


class Expectation(BaseModel):
    """What a response must look like.

    Attributes:
        status: The HTTP status.
        predictions: Number of predictions in a successful answer.
        keys: Keys every prediction has.
        message: A fragment the error message must contain.
        match: For each prediction in order, key/value pairs it must contain (`[{"label": 7}]`).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    status: int = Field(ge=100, le=599)
    predictions: int | None = Field(None, ge=0)
    keys: tuple[str, ...] = ()
    message: str | None = None
    match: tuple[dict[str, Any], ...] = ()


class _ExampleFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # Any JSON value: a string is sent as a raw (possibly undecodable) body.
    request: Any
    expect: Expectation


@dataclass(frozen=True)
class Example:
    """One example request of a model."""

    name: str
    path: Path
    request: Any
    expect: Expectation

    def body(self) -> bytes:
        """The bytes to POST: JSON for objects, the text itself for a string (to test undecodable bodies)."""
        if isinstance(self.request, str):
            return self.request.encode("utf-8")
        return json.dumps(self.request).encode("utf-8")

    @property
    def instance_count(self) -> int:
        instances = self.request.get("instances") if isinstance(self.request, dict) else None
        return len(instances) if isinstance(instances, list) else 0


def load_examples(folder: Path) -> tuple[Example, ...]:
    """Every `*.json` of a folder, sorted by name; none when the folder does not exist."""
    if not folder.is_dir():
        return ()
    examples, problems = [], []
    for path in sorted(folder.glob("*.json")):
        try:
            parsed = _ExampleFile.model_validate_json(path.read_bytes())
        except ValidationError as exc:
            details = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(file)'}: {e['msg']}" for e in exc.errors())
            problems.append(f"{path}: {details}")
            continue
        examples.append(Example(name=path.stem, path=path, request=parsed.request, expect=parsed.expect))
    if problems:
        raise ServingError("invalid example files:\n" + "\n".join(f"  - {p}" for p in problems))
    return tuple(examples)


def check_response(expect: Expectation, status: int, text: str) -> list[str]:
    """Differences between a v1 response and what is expected; empty when it matches."""
    problems = []
    if status != expect.status:
        problems.append(f"status {status}, expected {expect.status}")
    if expect.message is not None and expect.message not in error_message(text):
        problems.append(f"message {error_message(text)!r} does not contain {expect.message!r}")
    if expect.predictions is None and not expect.keys and not expect.match:
        return problems
    try:
        predictions = json.loads(text).get("predictions")
    except (ValueError, AttributeError):
        predictions = None
    if not isinstance(predictions, list):
        return [*problems, "response has no list of predictions"]
    if expect.predictions is not None and len(predictions) != expect.predictions:
        problems.append(f"{len(predictions)} predictions, expected {expect.predictions}")
    for index, prediction in enumerate(predictions):
        missing = [k for k in expect.keys if not isinstance(prediction, dict) or k not in prediction]
        if missing:
            problems.append(f"prediction {index} lacks {', '.join(missing)}")
            break
    for index, wanted in enumerate(expect.match):
        got = predictions[index] if index < len(predictions) and isinstance(predictions[index], dict) else {}
        wrong = {k: got.get(k) for k, v in wanted.items() if got.get(k) != v}
        if wrong:
            problems.append(f"prediction {index} has {wrong}, expected {wanted}")
    return problems


def error_message(text: str) -> str:
    """The message of an error answer: TorchServe's `{"message": ...}`, KServe's `{"error": ...}`, or the text."""
    try:
        body = json.loads(text)
    except ValueError:
        return text
    if isinstance(body, dict):
        for key in ("message", "error", "detail"):
            if isinstance(body.get(key), str):
                return body[key]
    return text
