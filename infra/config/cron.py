"""Five-field cron schedules as KEDA's cron scaler reads them (robfig/cron's standard parser).

https://keda.sh/docs/2.20/scalers/cron/
https://pkg.go.dev/github.com/robfig/cron/v3#hdr-CRON_Expression_Format
"""

from __future__ import annotations

import re

MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
# (name, lowest, highest, names counted from `lowest`)
FIELDS: tuple[tuple[str, int, int, tuple[str, ...]], ...] = (
    ("minute", 0, 59, ()), ("hour", 0, 23, ()), ("day-of-month", 1, 31, ()), ("month", 1, 12, MONTHS),
    ("day-of-week", 0, 6, DAYS))
_ITEM = re.compile(r"^(?P<range>\*|\?|[0-9A-Za-z]+(-[0-9A-Za-z]+)?)(/(?P<step>[0-9]+))?$")
EXAMPLE = "`0 7 * * 1-5` (07:00, Monday to Friday)"


def _value(text: str, low: int, high: int, names: tuple[str, ...]) -> int | None:
    if text.upper() in names:
        return low + names.index(text.upper())
    if text.isdigit() and low <= int(text) <= high:
        return int(text)
    return None


def _field_problem(text: str, name: str, low: int, high: int, names: tuple[str, ...]) -> str | None:
    allowed = f"{low}-{high}" + (f" or {names[0]}-{names[-1]}" if names else "")
    for item in text.split(","):
        match = _ITEM.fullmatch(item)
        if match is None:
            return f"{name} `{item}` is not `*`, a value, a range `a-b` or a step `/n`"
        bounds = match["range"]
        if match["step"] is not None and int(match["step"]) == 0:
            return f"{name} `{item}` steps by 0"
        # A step beyond the field's span selects the start alone; a huge one overflows the scaler's integer.
        if match["step"] is not None and int(match["step"]) > high - low + 1:
            return f"{name} `{item}` steps by more than {high - low + 1}"
        if bounds in {"*", "?"}:
            if bounds == "?" and name not in {"day-of-month", "day-of-week"}:
                return f"{name} may not be `?` (only day-of-month and day-of-week)"
            continue
        ends = [_value(end, low, high, names) for end in bounds.split("-")]
        if any(end is None for end in ends):
            return f"{name} `{item}` is outside {allowed}"
        if len(ends) == 2 and ends[0] > ends[1]:
            return f"{name} `{item}` runs backwards"
    return None


def cron_problem(schedule: str) -> str | None:
    """What is wrong with a five-field cron schedule, or None when KEDA's cron scaler accepts it."""
    fields = schedule.split()
    if len(fields) != len(FIELDS):
        return (f"has {len(fields)} fields; a cron schedule has five (minute hour day-of-month month day-of-week), "
                f"such as {EXAMPLE}")
    for text, (name, low, high, names) in zip(fields, FIELDS, strict=True):
        problem = _field_problem(text, name, low, high, names)
        if problem:
            return f"{problem}; such as {EXAMPLE}"
    return None
