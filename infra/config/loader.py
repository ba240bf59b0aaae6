"""Reads the stack's Pulumi config once and turns it into a frozen, validated object."""

from __future__ import annotations

import json
import re
import types
import typing
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import pulumi
from pydantic import BaseModel, ValidationError
from pydantic.alias_generators import to_camel

from infra.config.alerts import credential_problems
from infra.config.errors import NOT_SET, SUBKEY_MARK, ConfigError, Problem, describe_error, did_you_mean, join_path
from infra.config.models import PlatformConfig, StackConfig, TeamConfig
from infra.config.recovery import recovery_stack_name

STACK_CONFIG_DIR = "stacks"
# Scalar keys, declared with their defaults in Pulumi.yaml.
DECLARED_KEYS = ("environment", "costCenter", "dataClassification", "team", "platformStack")
# Structured keys; Pulumi's project schema cannot type objects, so the models do.
PLATFORM_KEYS = ("network", "cluster", "teams", "gpuPools", "modelStore", "observability", "autoscaling",
                 "recovery")
TEAM_KEYS = ("models",)
# Keys that moved, and where to: a stack file written for an older release gets directions, not "unknown key".
MOVED_KEYS = {
    "quota": "moved to the platform stack: set it as teams[].quota there (the platform owns every team's "
             "guardrails; see docs/team-onboarding.md)",
}
STRUCTURED_KEYS = PLATFORM_KEYS + TEAM_KEYS
ALL_KEYS = DECLARED_KEYS + STRUCTURED_KEYS
_INTERNAL_FIELDS = {"project", "stack", "kind"}


def stack_file(stack: str) -> str:
    """Path of a stack's config file relative to the project root."""
    return f"{STACK_CONFIG_DIR}/Pulumi.{stack}.yaml"


def load_stack_config() -> StackConfig:
    """Read the running stack's config; raise ConfigError listing every problem."""
    from pulumi.runtime import config as runtime_config

    project, stack = pulumi.get_project(), pulumi.get_stack()
    secret_keys = {*runtime_config.get_config_secret_keys_env(), *runtime_config._SECRET_KEYS.get()}
    return parse_stack_config(_all_config(), project=project, stack=stack, secret_keys=secret_keys,
                              secure_paths=_secure_paths_on_disk(project, stack))


def _secure_paths_on_disk(project: str, stack: str) -> set[str] | None:
    """Which values of the stack file are `secure:`; None when the file is not there (config from elsewhere).

    The engine hands the program decrypted values and marks only top-level keys secret: one `secure:` value
    inside `observability` marks all of it. The stack file says exactly which values were encrypted.
    """
    from infra.preview.project import Project, ProjectError

    root = Path(__file__).resolve().parents[2]
    try:
        found = Project.load(root)
        if found.name != project or not found.stack_path(stack).is_file():
            return None
        return set(found.stack_config(stack).secure_paths)
    except ProjectError:
        return None


def _all_config() -> dict[str, str]:
    # The SDK has no public "list every key" call; these two are what pulumi.Config reads from.
    from pulumi.runtime import config as runtime_config

    merged = dict(runtime_config.get_config_env())
    merged.update(runtime_config.CONFIG.get())
    return merged


def parse_stack_config(values: Mapping[str, str], *, project: str, stack: str, secret_keys: Collection[str] = (),
                       secure_paths: Collection[str] | None = None) -> StackConfig:
    """Validate raw config values (as the engine passes them: strings, JSON for objects).

    ``secret_keys`` are the top-level keys the engine marks secret; ``secure_paths`` the exact paths of the
    stack file's `secure:` values (``key.sub[0].field``), when known. A credential must be one of them.

    Raises:
        ConfigError: naming the stack file and every problem found.
    """
    prefix = f"{project}:"
    problems: list[Problem] = []
    raw: dict[str, Any] = {}
    for key, text in values.items():
        if not key.startswith(prefix):
            continue
        name = key.removeprefix(prefix)
        if name in MOVED_KEYS:
            problems.append(Problem(key, MOVED_KEYS[name], _decode(text)))
        elif name not in ALL_KEYS:
            problems.append(Problem(key, f"unknown key{did_you_mean(name, ALL_KEYS)}; allowed keys: "
                                         f"{', '.join(ALL_KEYS)}", _decode(text)))
        elif name in STRUCTURED_KEYS:
            raw[name] = _decode(text)
        elif text != "":
            raw[name] = text

    model: type[PlatformConfig] | type[TeamConfig] = TeamConfig if "team" in raw else PlatformConfig
    problems += _kind_problems(model, raw, prefix, stack)
    data = {"project": project, "stack": stack, "region": values.get("aws:region", NOT_SET), **raw}
    data = {k: v for k, v in data.items() if k not in (PLATFORM_KEYS if model is TeamConfig else TEAM_KEYS)}
    data = {k: v for k, v in data.items() if v is not NOT_SET}
    try:
        # Some limits depend on the stack (prod minimums, the recovery region); validators read it from the context.
        context = {"environment": raw.get("environment"), "region": values.get("aws:region"), "project": project}
        config = model.model_validate(data, context=context)
    except ValidationError as exc:
        errors = _without_echoes(exc.errors())
        problems += [found for err in errors for found in _problems(err, model, data, prefix)]
        config = None
    if isinstance(config, PlatformConfig):
        key = prefix + "observability"

        def is_secret(path: str) -> bool:
            return path in secure_paths if secure_paths is not None else key in secret_keys

        problems += credential_problems(config.observability.alerts, key + ".alerts", is_secret)
    if problems or config is None:
        raise ConfigError(stack_file(stack), problems)
    return config


def packaged_model_names(values: Mapping[str, str], *, project: str) -> list[str]:
    """Models of a team stack that deploy from packaged archives (the torchserve runtime).

    Lenient on purpose: it only decides what to package before a preview; the program itself
    reports whatever is wrong with the entries.
    """
    entries = _decode(values.get(f"{project}:models", "[]"))
    if not isinstance(entries, list):
        return []
    return [e["name"] for e in entries if isinstance(e, dict) and isinstance(e.get("name"), str)
            and e.get("runtime", "torchserve") == "torchserve"]


def _decode(text: str) -> Any:
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return text


def _kind_problems(model: type[BaseModel], raw: Mapping[str, Any], prefix: str, stack: str) -> list[Problem]:
    problems = []
    environment = raw.get("environment")
    if model is TeamConfig:
        problems += [Problem(prefix + key, "is only valid in platform stacks", raw[key])
                     for key in PLATFORM_KEYS if key in raw]
        expected = f"{raw['team']}-{environment}"
        if environment and stack != expected:
            problems.append(Problem("stack name", f"a team stack must be named <team>-<environment> ({expected})",
                                    stack))
    else:
        problems += [Problem(prefix + key, "is only valid in team stacks (set team too)", raw[key])
                     for key in ("platformStack", *TEAM_KEYS) if key in raw]
        recovery = raw.get("recovery")
        restores = isinstance(recovery, dict) and recovery.get("restoreFrom") not in (None, "")
        recovery_stack = recovery_stack_name(environment) if isinstance(environment, str) else None
        if environment and stack == recovery_stack and not restores:
            problems.append(Problem(prefix + "recovery.restoreFrom", f"required for the recovery stack {stack!r}: "
                                                                     f"the platform stack of {environment!r} it "
                                                                     "restores (see docs/recovery.md)"))
        elif environment and stack not in (environment, recovery_stack):
            problems.append(Problem(prefix + "team", f"required for the team stack {stack!r} (platform stacks "
                                                     f"are named after their environment: {environment!r}, or "
                                                     f"{recovery_stack!r} for its recovery stack)"))
        elif restores and stack != recovery_stack:
            problems.append(Problem(prefix + "recovery.restoreFrom", f"only the recovery stack {recovery_stack!r} "
                                                                     f"restores another stack; {stack!r} is the "
                                                                     "environment's platform stack",
                                    recovery["restoreFrom"]))
    return problems


def _without_echoes(errors: list[Any]) -> list[Any]:
    # A list whose only item is invalid also fails its length check; the item's error says it all.
    nested = [tuple(e["loc"]) for e in errors]
    return [e for e in errors if not (e["type"] == "too_short" and any(
        len(other) > len(e["loc"]) and other[: len(e["loc"])] == tuple(e["loc"]) for other in nested))]


def _problems(error: dict[str, Any], model: type[BaseModel], data: Mapping[str, Any], prefix: str) -> list[Problem]:
    """The problems of one pydantic error: one, or one per sub-key its validator marked (SUBKEY_MARK)."""
    # Defaults are validated under their Python names; stack files use camelCase.
    loc = _without_union_tags([to_camel(p) if isinstance(p, str) else p for p in error["loc"]], data)
    message = describe_error(error, _allowed_keys(model, loc[:-1]))
    if not message.startswith(SUBKEY_MARK):
        return [_at(loc, message, error, data, prefix)]
    found = []
    for marked in message[1:].split(SUBKEY_MARK):
        sub, _, text = marked.partition(": ")
        path = loc + [int(part) if part.isdigit() else part for part in re.findall(r"[^.\[\]]+", sub)]
        found.append(_at(path, text, error, data, prefix))
    return found


def _at(loc: list[str | int], message: str, error: dict[str, Any], data: Mapping[str, Any], prefix: str) -> Problem:
    head = loc[0] if loc else ""
    key = "aws:region" if head == "region" else prefix + str(head)
    value = NOT_SET if error["type"] == "missing" else _lookup(data, loc)
    return Problem(join_path(key, loc[1:]), message, value)


def _without_union_tags(loc: list[str | int], data: Any) -> list[str | int]:
    """pydantic puts a tagged union's tag in the path (`receivers[0].pagerduty.routingKey`); the stack file
    has no such key."""
    kept: list[str | int] = []
    for part in loc:
        if isinstance(data, dict) and part not in data and data.get("type") == part:
            continue
        kept.append(part)
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            data = None
    return kept


def _lookup(data: Any, loc: Sequence[str | int]) -> Any:
    for part in loc:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return NOT_SET
    return data


def _allowed_keys(model: type[BaseModel], loc: Sequence[str | int]) -> list[str]:
    """The camelCase keys accepted at ``loc`` inside ``model``."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        fields = {f.alias or n: f for n, f in current.model_fields.items()}
        if part not in fields:
            return []
        current = _model_in(fields[part].annotation)
        if current is None:
            return []
    return [f.alias or n for n, f in current.model_fields.items() if n not in _INTERNAL_FIELDS]


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) in (tuple, typing.Union):
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None
