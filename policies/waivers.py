"""Policy waivers: load ``waivers.yaml``, refuse the ones that are not real, time-boxed exceptions, and
decide whether a violation is waived on a given day.

Pure functions over plain data: nothing here reads the clock or applies waivers itself; the CI gate
passes ``today`` and decides what to do with the answer.

Two kinds of problem, kept apart on purpose:

- a *malformed* file (not YAML, not a list, an entry that is not a mapping, a key given twice, a missing or
  unknown key, a list where a value belongs, an impossible date, neither or both of ``urn``/``name``) raises
  ``WaiverError``: the file cannot be read as intended, so the gate stops (exit 2);
- a *refused* waiver is well formed but does not meet the rules (``refusals``): it waives nothing and the
  gate lists it with why, so the violation it meant to waive counts as if it were not there.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Hashable, Iterable, Mapping
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
# Markers of unfinished text: a reason that still contains one was never written. "to do" is also plain
# English ("a week to do it"), so it counts only where it opens the reason or heads a note ("to do: ...");
# a template slot (<reason>, {{ticket}}) and filler (lorem, foo, blah, a keyboard mash) were never filled in.
_UNFINISHED = re.compile(
    r"^to[ -]?do\b|\bto[ -]?do(?=\s*:)|\b(?:to-?do|tbd|tbc|fixme|fill[ -]in|goes here|placeholder|lorem|ipsum"
    r"|x{3,}|asdf\w*|foo(?:bar)?|baz|qux|blah)\b|<[A-Za-z_][^<>\n]*>|\{\{[^{}\n]*\}\}", re.IGNORECASE)
_WORD = re.compile(r"[^\W\d_]{2,}")
# What a reason must say beyond the names it is about (see `_own_words`).
MIN_OWN_WORDS = 4
MIN_ORDINARY_WORDS = 2
# Words about the waiver itself: "waiver for this policy on this resource" says nothing about why.
_WAIVER_TERMS = frozenset({"waiver", "waivers", "waive", "waived", "reason", "policy", "resource", "exception",
                           "approved", "approval"})
_LETTERS = re.compile(r"[^\W\d_]+")
_CAMEL_HUMP = re.compile(r"(?<=[a-z])(?=[A-Z])")
# Letters typed in order along the alphabet or a keyboard row (abcd, qwer, uiop, hjkl, lkjh) are a mash.
_LETTER_RUNS = ("abcdefghijklmnopqrstuvwxyz", "qwertyuiop", "asdfghjkl", "zxcvbnm")
_CONSONANTS_5 = re.compile(r"[bcdfghjklmnpqrstvwxz]{5}")
_TRIPLED = re.compile(r"(.)\1\1")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")

# An accountable approver is one person or one role someone can be asked about: an email address, or
# the IAM user or role ARN that approved.
_EMAIL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._%+-]*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,}")
_IAM_ARN = re.compile(r"arn:aws(?:-[a-z]+)*:iam::\d{12}:(?:user|role)/[A-Za-z0-9+=,.@_/-]+")
# An STS ARN names a session (assumed-role/..., federated-user/...): whatever ran under the role, a CI job
# as often as a person. The account's root user is no one in particular.
_STS_ARN = re.compile(r"arn:[^:]*:sts:", re.IGNORECASE)
_ROOT_ARN = re.compile(r"arn:[^:]*:iam::\d*:root", re.IGNORECASE)
# Mailboxes that name no one, compared after normalising the local part (see `_approver_problem`).
_NOBODY = frozenset({"me", "admin", "root", "test", "user", "nobody", "noreply", "donotreply", "null", "none",
                     "unknown", "changeme", "example", "anonymous", "todo", "tbd"})
MIN_LOCAL_PART = 2
_NOT_AN_IDENTITY = "is not an accountable identity"


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


class _DuplicateKey(yaml.MarkedYAMLError):
    """A key given twice in one mapping."""


class _WaiverLoader(yaml.BaseLoader):
    """BaseLoader that refuses a key given twice in one mapping.

    YAML readers keep the last value of a repeated key without a word, so a second ``reason:`` or ``expires:``
    pasted below the first would silently replace what the approver read.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Mark] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):  # a list or mapping as a key: BaseLoader reports it below
                continue
            if key in seen:
                raise _DuplicateKey(problem=f"duplicate key {key!r} (first on line {seen[key].line + 1})",
                                    problem_mark=key_node.start_mark)
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


def _yaml_problem(error: yaml.YAMLError, text: str) -> str:
    """Where and what, on one line, from a PyYAML error (whose own text spans lines with an excerpt)."""
    if isinstance(error, _DuplicateKey):
        return f"line {error.problem_mark.line + 1}: {error.problem}"
    if isinstance(error, yaml.MarkedYAMLError):
        mark = error.problem_mark or error.context_mark
        what = ", ".join(filter(None, [error.context, error.problem]))
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        return f"{where}not valid YAML: {what}"
    if isinstance(error, yaml.reader.ReaderError):
        return f"line {text.count(chr(10), 0, error.position) + 1}: not valid YAML: {str(error).splitlines()[0]}"
    return f"not valid YAML: {str(error).splitlines()[0]}"


def load_waivers(path: Path | str = DEFAULT_PATH) -> list[Waiver]:
    """Every waiver in ``path`` (an empty file means none).

    Raises:
        WaiverError: when the file is not UTF-8 YAML, repeats a key, or has malformed entries (every problem of
            every entry together).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise WaiverError(path, [f"byte {error.start}: not UTF-8 text"]) from None
    try:
        # BaseLoader keeps every scalar a string: an impossible date is reported, not raised by the parser.
        data = yaml.load(text, Loader=_WaiverLoader) or []
    except yaml.YAMLError as error:
        raise WaiverError(path, [_yaml_problem(error, text)]) from None
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
    own = _own_words(text, waiver)
    if len(own) < MIN_OWN_WORDS:
        listed = f" ({', '.join(own)})" if own else ""
        return (f"reason {text!r} says too little: {len(own)} word(s) of its own{listed} besides the policy, "
                f"resource, approver and waiver terms; it needs at least {MIN_OWN_WORDS} of 3+ letters")
    ordinary = [word for word in own if _looks_like_a_word(word)]
    if len(ordinary) < MIN_ORDINARY_WORDS:
        listed = f" ({', '.join(ordinary)})" if ordinary else ""
        return (f"reason {text!r} is not written in words: {len(ordinary)} of its own words look like ordinary "
                f"words{listed}; it needs at least {MIN_ORDINARY_WORDS}")
    return None


def _words(text: str) -> list[str]:
    """The lower-cased words of 3+ letters in ``text``, split at anything not a letter and at camelCase humps."""
    return [word.lower() for run in _LETTERS.findall(text) for word in _CAMEL_HUMP.split(run) if len(word) >= 3]


def _own_words(reason: str, waiver: Waiver) -> list[str]:
    """The different words ``reason`` brings of its own, in order.

    A reason can look like a sentence and say nothing: the policy name twice, the resource's name split into
    words, the approver's address. So every word (3+ letters; ``aws-s3-bucket-sse-kms`` is aws, bucket, sse,
    kms; ``modelStore`` is model, store) that occurs in the policy name, the resource URN or name or the
    approver does not count, nor do words about the waiver itself (waiver, reason, policy, resource...).
    """
    borrowed = {*_words(waiver.policy), *_words(waiver.resource), *_words(waiver.approved_by), *_WAIVER_TERMS}
    return [word for word in dict.fromkeys(_words(reason)) if word not in borrowed]


def _looks_like_a_word(word: str) -> bool:
    """Whether ``word`` (lower case, letters only) is shaped like an ordinary word rather than a mash of keys.

    A deliberately small heuristic, not a dictionary: it must accept any real word, jargon included, and refuse
    what people type to get past a form (asdf qwer zxcv uiop, abcd efgh, aaaa). An ordinary word has a vowel
    (a, e, i, o, u, y; a letter outside a-z is given the benefit of the doubt), no letter three times in a row,
    no five consonants in a row (rare in English; "instrument" has four), and is not letters typed in order
    along the alphabet or a keyboard row, forwards or backwards.
    """
    return (re.search(r"[aeiouy]|[^a-z]", word) is not None and not _TRIPLED.search(word)
            and not _CONSONANTS_5.search(word)
            and not any(word in run or word[::-1] in run for run in _LETTER_RUNS))


def _approver_problem(approver: str) -> str | None:
    """Why ``approver`` is no one who can be asked about the waiver, or None.

    An email address's local part is compared with generic mailboxes after dropping ``+tag``, dots, dashes
    and underscores and lower-casing (``No.Reply``, ``no_reply`` and ``do-not-reply`` are ``noreply`` and
    ``donotreply``), and must keep at least 2 characters. An ARN must be an IAM user or role: an STS session
    (``assumed-role/...``) is whatever ran under the role, often CI, and the account root is no one in particular.
    """
    text = approver.strip()
    refused = f"approvedBy {approver!r} {_NOT_AN_IDENTITY}"
    if _STS_ARN.match(text):
        return f"{refused}: an STS session names one run under a role (a CI job, say), not an approver"
    if _ROOT_ARN.match(text):
        return f"{refused}: the account root user is no one in particular"
    if _EMAIL.fullmatch(text):
        local = text.rsplit("@", 1)[0]
        mailbox = re.sub(r"[._-]", "", local.split("+", 1)[0]).lower()
        if mailbox in _NOBODY:
            return f"{refused}: {local!r} is a generic or placeholder mailbox"
        if len(mailbox) < MIN_LOCAL_PART:
            return f"{refused}: {local!r} is too short to name a person or team"
        return None
    if _IAM_ARN.fullmatch(text):
        return None
    return f"{refused} (an email address or an IAM user or role ARN)"


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
