"""The Pulumi project on disk: Pulumi.yaml and the stack files, read the way the engine reads them."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from infra.config.alerts import SECRET_PLACEHOLDER

PROJECT_FILE = "Pulumi.yaml"


class ProjectError(Exception):
    """The project or a stack file cannot be used (missing, unreadable, not YAML)."""


@dataclass(frozen=True)
class StackConfig:
    """A stack's config as the engine hands it to a program: strings (JSON for objects), defaults applied."""

    values: dict[str, str]
    secret_keys: tuple[str, ...] = field(default=())
    # Every `secure:` value, top-level or nested: `ai-platform:observability.alerts.receivers[0].routingKey`.
    secure_paths: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class Project:
    """A Pulumi project: its name, program, stack folder and declared config."""

    root: Path
    name: str
    main: Path
    stack_config_dir: Path
    declared_config: dict[str, Any]

    @classmethod
    def find(cls, start: Path | None = None) -> Project:
        """Load the nearest Pulumi.yaml at or above ``start`` (default: the working directory)."""
        here = (start or Path.cwd()).resolve()
        for folder in (here, *here.parents):
            if (folder / PROJECT_FILE).is_file():
                return cls.load(folder)
        raise ProjectError(f"no {PROJECT_FILE} found in {here} or any parent folder")

    @classmethod
    def load(cls, root: Path) -> Project:
        data = _read_yaml(root / PROJECT_FILE)
        if not isinstance(data, dict) or "name" not in data:
            raise ProjectError(f"{root / PROJECT_FILE}: not a Pulumi project file (no name)")
        declared = data.get("config") or {}
        if not isinstance(declared, dict):
            raise ProjectError(f"{root / PROJECT_FILE}: 'config:' must be a mapping of keys to declarations")
        _check_declarations(str(data["name"]), declared, root / PROJECT_FILE)
        return cls(
            root=root,
            name=str(data["name"]),
            main=root / str(data.get("main") or "."),
            stack_config_dir=root / str(data.get("stackConfigDir") or "."),
            declared_config=dict(declared),
        )

    def stack_path(self, stack: str) -> Path:
        return self.stack_config_dir / f"Pulumi.{stack}.yaml"

    def stacks(self) -> list[str]:
        """Every stack with a config file, sorted."""
        files = self.stack_config_dir.glob("Pulumi.*.yaml")
        return sorted(f.name.removeprefix("Pulumi.").removesuffix(".yaml") for f in files)

    def stack_config(self, stack: str) -> StackConfig:
        """The stack's config with Pulumi.yaml defaults applied, as the engine passes it to the program."""
        if not STACK_NAME.fullmatch(stack):
            raise ProjectError(f"{stack[:100]!r} is {NOT_A_STACK_NAME}")
        path = self.stack_path(stack)
        if not path.is_file():
            known = ", ".join(self.stacks()) or "none"
            raise ProjectError(f"no stack {stack!r}: {path.relative_to(self.root)} does not exist "
                               f"(stacks: {known})")
        data = _read_yaml(path) or {}
        if not isinstance(data, dict) or not isinstance(data.get("config", {}), dict):
            raise ProjectError(f"{path.relative_to(self.root)}: expected a mapping with a 'config:' mapping")
        values: dict[str, str] = {}
        secrets: list[str] = []
        secure: list[str] = []
        written: dict[str, str] = {}
        for key, value in (data.get("config") or {}).items():
            full = self._qualify(str(key))
            if full in written:
                raise ProjectError(f"{path.relative_to(self.root)}: config key {full} is set twice, as "
                                   f"{written[full]!r} and {str(key)!r}: a key without a namespace is the "
                                   f"project's ({self.name}:), keep one of them")
            written[full] = str(key)
            # Offline there is no key to decrypt with; the program sees a marked placeholder. Like the engine,
            # a key with a secure value anywhere inside is secret as a whole.
            value, paths = _without_secure(value, full)
            secure += paths
            if paths:
                secrets.append(full)
            values[full] = value if isinstance(value, str) and paths == [full] else _engine_string(value)
        for key, declaration in self.declared_config.items():
            full = self._qualify(key)
            fallback = _declared_value(declaration)
            if full not in values and fallback is not None:
                values[full] = _engine_string(fallback)
        return StackConfig(values=values, secret_keys=tuple(secrets), secure_paths=tuple(secure))

    def _qualify(self, key: str) -> str:
        return key if ":" in key else f"{self.name}:{key}"


# What the engine accepts in a project config declaration (pkg/workspace/project.go, Project.Validate).
_DECLARATION_KEYS = {"type", "items", "description", "secret", "default", "value"}


def _check_declarations(project: str, declared: dict[str, Any], path: Path) -> None:
    for key, declaration in declared.items():
        namespace = str(key).split(":", 1)[0] if ":" in str(key) else project
        if not isinstance(declaration, dict):
            continue  # the shorthand `key: value`
        unknown = set(declaration) - _DECLARATION_KEYS
        if unknown:
            raise ProjectError(f"{path}: config {key}: unknown fields {', '.join(sorted(unknown))}")
        if namespace != project and set(declaration) - {"value"}:
            raise ProjectError(f"{path}: config {key} is not namespaced by the project {project!r}: it may only "
                               "set a value, not a type, default or description")


def _declared_value(declaration: Any) -> Any:
    """The value the engine applies when a stack does not set the key: shorthand, `value` or `default`."""
    if not isinstance(declaration, dict):
        return declaration
    return declaration.get("value", declaration.get("default"))


def _without_secure(value: Any, path: str) -> tuple[Any, list[str]]:
    """``value`` with every `{secure: ...}` replaced by the placeholder, and the paths where it was."""
    if isinstance(value, dict) and set(value) == {"secure"}:
        return SECRET_PLACEHOLDER, [path]
    if isinstance(value, dict):
        pairs = {k: _without_secure(v, f"{path}.{k}") for k, v in value.items()}
        return {k: v for k, (v, _) in pairs.items()}, [p for _, found in pairs.values() for p in found]
    if isinstance(value, list):
        items = [_without_secure(v, f"{path}[{i}]") for i, v in enumerate(value)]
        return [v for v, _ in items], [p for _, found in items for p in found]
    return value, []


def _engine_string(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)
    # YAML turns 2024-01-01 into a date; the engine hands the program its text.
    return str(value)


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML as the engine reads it: a key repeated in one mapping is an error, not last-wins.

    PyYAML keeps the last of two `ai-platform:cluster:` blocks and drops the first without a word; the Pulumi
    CLI's YAML parser refuses the file, and so does the offline preview.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *defaults` merges a mapping in; keys written beside it override, as YAML says
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if isinstance(key, list | dict):
                continue  # complex keys are rejected by the base constructor itself
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice in one mapping (first on line {seen[key]})",
                    key_node.start_mark)
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


# A stack name as Pulumi allows it: a stack is a file in the stack folder, never a path.
STACK_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")
NOT_A_STACK_NAME = "not a stack name (letters, digits, '-', '_' and '.', as in vision-prod), not a file or path"

# The engine's YAML parser reads only true and false as booleans (YAML 1.2); PyYAML's YAML 1.1 also turns yes, no,
# on and off into them, so `scaleToZero: yes` would pass offline and fail on deploy (and `on:` become key True).
_BOOL = "tag:yaml.org,2002:bool"
_UniqueKeyLoader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != _BOOL]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_UniqueKeyLoader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)
    except OSError as exc:
        raise ProjectError(f"{path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ProjectError(f"{path}: not UTF-8 text") from None
    except yaml.YAMLError as exc:
        raise ProjectError(f"{path}: not valid YAML: {exc}") from None
