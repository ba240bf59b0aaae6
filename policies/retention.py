"""Shared by the retention policies: the per-environment minimum a policy reads from its pack config."""

from __future__ import annotations

from typing import Any

from policies.props import config_value, number


def minimum_days(args: Any, key: str, default: int) -> int:
    """The policy's ``key`` setting (days) from policies/config/<env>.json, or ``default`` when unset."""
    return int(number(config_value(args, key, default), default))


def days_schema(default: int, description: str) -> dict[str, Any]:
    """The config schema of one minimum, in days."""
    return {"type": "integer", "minimum": 1, "maximum": 3650, "default": default, "description": description}


def show(days: float) -> str:
    """Days as written in a message: the engine hands numbers over as floats."""
    return str(int(days)) if float(days).is_integer() else f"{days:g}"
