"""Policy waivers: load ``waivers.yaml`` and decide whether a violation is waived on a given day.

Pure functions over plain data: nothing here reads the clock or applies waivers itself; the CI gate
passes ``today`` and decides what to do with the answer.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

DEFAULT_PATH = Path(__file__).resolve().parent / "waivers.yaml"
_REQUIRED = ("policy", "reason", "expires", "approvedBy")


class WaiverError(ValueError):
    """The waivers file is malformed; ``problems`` lists every problem found, each with its entry."""

    def __init__(self, path: Path, problems: list[str]):
        super().__init__(f"{path}: " + "; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Waiver:
    """One approved exception: ``policy`` does not apply to the resource ``urn`` or ``name`` until ``expires``."""

    policy: str
    reason: str
    expires: dt.date
    approved_by: str
    urn: str | None = None
    name: str | None = None

    def covers(self, policy: str, urn: str | None) -> bool:
        """Whether this waiver names ``policy`` and the resource ``urn`` (by URN or by its logical name)."""
        if policy != self.policy or not urn:
            return False
        return urn == self.urn if self.urn else resource_name(urn) == self.name

    def is_active(self, today: dt.date) -> bool:
        return today <= self.expires


def resource_name(urn: str) -> str:
    """The logical name at the end of a URN (``urn:pulumi:stack::project::type::name`` -> ``name``)."""
    return urn.rsplit("::", 1)[-1]


def _parse_entry(index: int, entry: Any, problems: list[str]) -> Waiver | None:
    where, before = f"entry {index}", len(problems)
    if not isinstance(entry, dict):
        problems.append(f"{where}: expected a mapping, got {type(entry).__name__}")
        return None
    missing = [key for key in _REQUIRED if not entry.get(key)]
    if missing:
        problems.append(f"{where}: missing {', '.join(missing)}")
    if bool(entry.get("urn")) == bool(entry.get("name")):
        problems.append(f"{where}: give exactly one of urn or name")
    expires = entry.get("expires")
    if isinstance(expires, str):
        try:
            expires = dt.date.fromisoformat(expires)
        except ValueError:
            problems.append(f"{where}: expires {expires!r} is not YYYY-MM-DD")
    unknown = sorted(set(entry) - {*_REQUIRED, "urn", "name"})
    if unknown:
        problems.append(f"{where}: unknown keys {', '.join(unknown)}")
    if len(problems) > before:
        return None
    return Waiver(policy=str(entry["policy"]), reason=str(entry["reason"]), expires=expires,
                  approved_by=str(entry["approvedBy"]), urn=entry.get("urn") or None, name=entry.get("name") or None)


def load_waivers(path: Path | str = DEFAULT_PATH) -> list[Waiver]:
    """Every waiver in ``path`` (an empty file means none).

    Raises:
        WaiverError: with every problem of every entry, when any entry is malformed.
    """
    path = Path(path)
    # BaseLoader keeps every scalar a string: an impossible date is reported, not raised by the parser.
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.BaseLoader) or []
    if not isinstance(data, list):
        raise WaiverError(path, [f"expected a list of waivers, got {type(data).__name__}"])
    problems: list[str] = []
    waivers = [_parse_entry(index, entry, problems) for index, entry in enumerate(data)]
    if problems:
        raise WaiverError(path, problems)
    return [w for w in waivers if w is not None]


def find_waiver(waivers: Iterable[Waiver], policy: str, urn: str | None, today: dt.date) -> Waiver | None:
    """The active waiver that covers a violation of ``policy`` by ``urn``, if any."""
    return next((w for w in waivers if w.covers(policy, urn) and w.is_active(today)), None)


def is_waived(waivers: Iterable[Waiver], policy: str, urn: str | None, today: dt.date) -> bool:
    """Whether a violation of ``policy`` reported against ``urn`` is waived on ``today``."""
    return find_waiver(waivers, policy, urn, today) is not None


def expired_waivers(waivers: Iterable[Waiver], today: dt.date) -> list[Waiver]:
    """Waivers past their expiry date: the gate should report these so they are renewed or removed."""
    return [w for w in waivers if not w.is_active(today)]


def unknown_policies(waivers: Iterable[Waiver], policy_names: Iterable[str]) -> list[Waiver]:
    """Waivers that name a policy the pack does not have (typos waive nothing)."""
    known = set(policy_names)
    return [w for w in waivers if w.policy not in known]
