"""Policy waivers: load ``waivers.yaml``, refuse the ones that are not real, time-boxed exceptions, and
decide whether a violation is waived on a given day.

Pure functions over plain data: nothing here reads the clock or applies waivers itself; the CI gate
passes ``today`` and decides what to do with the answer.

Two kinds of problem, kept apart on purpose:

- a *malformed* file (not a list, an entry that is not a mapping, a missing or unknown key, a list where a
  value belongs, an impossible date, neither or both of ``urn``/``name``) raises ``WaiverError``: the
  file cannot be read as intended, so the gate stops (exit 2);
- a *refused* waiver is well formed but does not meet the rules (``refusals``): it waives nothing and the
  gate lists it with why, so the violation it meant to waive counts as if it were not there.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

DEFAULT_PATH = Path(__file__).resolve().parent / "waivers.yaml"
_REQUIRED = ("policy", "reason", "expires", "approvedBy")

# How far ahead of the day the gate runs a waiver may expire, by the severity of the policy it waives:
# the worse the accepted risk, the sooner someone must look at it again (a renewal is a new approval).
MAX_DAYS = {"critical": 30, "high": 90, "medium": 180, "low": 365}
# A policy without a known severity gets the strictest limit rather than none.
_STRICTEST = min(MAX_DAYS.values())

# A reason says why the risk is accepted and what ends it: that takes a sentence, not a word.
MIN_REASON_CHARS = 20
MIN_REASON_WORDS = 4
# What YAML nulls arrive as under BaseLoader, and the usual stand-ins for "no reason given".
_NULL_LIKE = frozenset({"", "~", "null", "none", "nil", "undefined", "n/a", "na", "-", "--", "?", "."})
_PLACEHOLDERS = _NULL_LIKE | {"tbd", "tbc", "todo", "fixme", "temp", "tmp", "wip", "test", "xxx", "...",
                              "placeholder", "reason", "no reason", "unknown", "see above", "same as above"}
# Markers of unfinished text: a reason that still contains one was never written.
_UNFINISHED = re.compile(r"\b(todo|tbd|tbc|fixme|xxx+|lorem ipsum)\b", re.IGNORECASE)
_WORD = re.compile(r"[^\W\d_]{2,}")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")

# An accountable approver is one person or one role someone can be asked about: an email address, or
# the IAM user or role (or assumed role) ARN that approved.
_EMAIL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._%+-]*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,}")
_IAM_ARN = re.compile(r"arn:aws(?:-[a-z]+)*:(?:iam|sts)::\d{12}:(?:user|role|assumed-role)/[A-Za-z0-9+=,.@_/-]+")
_NOBODY = frozenset({"null", "none", "nobody", "noreply", "no-reply", "unknown", "anonymous", "todo", "tbd", "test"})


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

    @property
    def resource(self) -> str:
        return self.urn or self.name or ""


@dataclass(frozen=True)
class RefusedWaiver:
    """A well-formed waiver that breaks the rules: it waives nothing, and ``reason`` says why."""

    waiver: Waiver
    reason: str


def resource_name(urn: str) -> str:
    """The logical name at the end of a URN (``urn:pulumi:stack::project::type::name`` -> ``name``)."""
    return urn.rsplit("::", 1)[-1]


def _parse_entry(index: int, entry: Any, problems: list[str]) -> Waiver | None:
    where, before = f"entry {index}", len(problems)
    if not isinstance(entry, dict):
        problems.append(f"{where}: expected a mapping, got {type(entry).__name__}")
        return None
    # A key present with a blank or null value is well formed: the rules refuse it, with the value.
    missing = [key for key in _REQUIRED if key not in entry]
    if missing:
        problems.append(f"{where}: missing {', '.join(missing)}")
    nested = [key for key, value in entry.items() if not isinstance(value, str)]
    if nested:
        problems.append(f"{where}: {', '.join(map(str, nested))} must be a single value, not a list or mapping")
    # `urn: ~` next to a `name` means "no urn", as it would to any other YAML reader.
    urn, name = (entry.get(key) if isinstance(entry.get(key), str) and not _null_like(entry[key]) else None
                 for key in ("urn", "name"))
    if bool(urn) == bool(name):
        problems.append(f"{where}: give exactly one of urn or name")
    expires = entry.get("expires")
    if isinstance(expires, str):
        try:
            # fromisoformat alone also takes 20261231 and week dates: the file promises YYYY-MM-DD.
            if not _ISO_DATE.fullmatch(expires.strip()):
                raise ValueError(expires)
            expires = dt.date.fromisoformat(expires.strip())
        except ValueError:
            problems.append(f"{where}: expires {expires!r} is not YYYY-MM-DD")
    unknown = sorted(set(entry) - {*_REQUIRED, "urn", "name"})
    if unknown:
        problems.append(f"{where}: unknown keys {', '.join(unknown)}")
    if len(problems) > before:
        return None
    return Waiver(policy=entry["policy"], reason=entry["reason"], expires=expires,
                  approved_by=entry["approvedBy"], urn=urn, name=name)


def _null_like(value: str) -> bool:
    return value.strip().lower() in _NULL_LIKE


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


def max_expiry(severity: str | None, today: dt.date) -> dt.date:
    """The latest expiry a waiver of a policy of ``severity`` may have when the gate runs on ``today``."""
    return today + dt.timedelta(days=MAX_DAYS.get(severity or "", _STRICTEST))


def _reason_problem(waiver: Waiver) -> str | None:
    text = waiver.reason.strip()
    if not text:
        return "reason is blank"
    if text.lower() in _PLACEHOLDERS:
        return f"reason {text!r} is a placeholder, not a reason"
    unfinished = _UNFINISHED.search(text)
    if unfinished:
        return f"reason contains the placeholder {unfinished.group(0)!r}"
    if len(text) < MIN_REASON_CHARS:
        return f"reason {text!r} is {len(text)} characters; a reason is a sentence of at least {MIN_REASON_CHARS}"
    if len({w.lower() for w in _WORD.findall(text)}) < MIN_REASON_WORDS:
        return f"reason {text!r} is not a sentence: it needs at least {MIN_REASON_WORDS} different words"
    # The other fields pass for words; a reason that is one of them says nothing more.
    for field, value in (("policy", waiver.policy), ("resource", waiver.resource), ("approvedBy", waiver.approved_by)):
        if text.lower() == value.strip().lower():
            return f"reason only repeats the {field}"
    return None


def _approver_problem(approver: str) -> str | None:
    text = approver.strip()
    local = text.split("@", 1)[0].lower()
    if (_EMAIL.fullmatch(text) and local not in _NOBODY) or _IAM_ARN.fullmatch(text):
        return None
    return f"approvedBy {approver!r} is not an accountable identity (an email address or an IAM user or role ARN)"


def refusals(waiver: Waiver, severity: str | None, today: dt.date) -> list[str]:
    """Every rule ``waiver`` breaks, given the severity of its policy (None: not in the pack) on ``today``."""
    problems = []
    if severity is None:
        problems.append(f"policy {waiver.policy!r} is not in the pack")
    if waiver.urn and not waiver.urn.startswith("urn:pulumi:"):
        problems.append(f"urn {waiver.urn!r} is not a Pulumi URN (urn:pulumi:<stack>::<project>::<type>::<name>)")
    problems += filter(None, [_reason_problem(waiver), _approver_problem(waiver.approved_by)])
    latest = max_expiry(severity, today)
    if waiver.expires > latest:
        what = f"a {severity} policy" if severity in MAX_DAYS else "a policy of unknown severity"
        problems.append(f"expires {waiver.expires} is {(waiver.expires - today).days} days after {today}; "
                        f"a waiver of {what} lasts at most {(latest - today).days} days (until {latest})")
    return problems


def vet_waivers(waivers: Iterable[Waiver], severities: Mapping[str, str],
                today: dt.date) -> tuple[list[Waiver], list[RefusedWaiver]]:
    """Split ``waivers`` into those that may waive and those refused, with why.

    Args:
        waivers: as loaded.
        severities: the severity of every policy of the pack, by name (a name not here is not in the pack).
        today: the day the gate runs; expiry limits are measured from it.
    """
    accepted: list[Waiver] = []
    refused: list[RefusedWaiver] = []
    for waiver in waivers:
        problems = refusals(waiver, severities.get(waiver.policy), today)
        if problems:
            refused.append(RefusedWaiver(waiver, "; ".join(problems)))
        else:
            accepted.append(waiver)
    return accepted, refused
