"""README sections generated from the code, so the docs cannot drift from what the program accepts."""

from __future__ import annotations

import json
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from infra.config.capacity import AUTOSCALING_DEFAULTS
from infra.config.loader import PLATFORM_KEYS, TEAM_KEYS
from infra.config.models import PlatformConfig, TeamConfig
from infra.config.observability import ENVIRONMENT_DEFAULTS
from infra.versions import (
    CONTAINER_IMAGES,
    EKS_ADDONS,
    ELASTIC_STACK_DOCS,
    ELASTIC_STACK_VERSION,
    HELM_CHARTS,
    NODE_AMIS,
    SERVING_RUNTIMES,
    SUPPORTED_EKS_VERSIONS,
)

MARK = "<!-- aip:{name}:{edge} -->"


def _type_name(annotation: Any) -> str:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin in (types.UnionType, typing.Union):
        # A tagged union of models is one "object" (its variants' keys are all listed below it).
        return " or ".join(dict.fromkeys(_type_name(a) for a in args if a is not type(None)))
    if origin is tuple:
        return f"list of {_type_name(args[0])}"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "object"
    return {str: "string", int: "integer", bool: "boolean"}.get(annotation, getattr(annotation, "__name__", "?"))


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        value = field.default_factory()
        return "see below" if isinstance(value, BaseModel) else f"`{json.dumps(value)}`"
    if field.default is PydanticUndefined:
        return "required"
    if field.default is None:
        return "not set"
    value = list(field.default) if isinstance(field.default, tuple) else field.default
    return f"`{json.dumps(value)}`"


def _per_environment(defaults: dict[str, Any], path: tuple[str, ...]) -> str:
    """`dev 7 · staging 15 · prod 30` for a key whose default depends on the environment."""
    cells = []
    for environment, values in defaults.items():
        for part in path:
            values = values.get(part, {}) if isinstance(values, dict) else {}
        if isinstance(values, dict):
            return "per environment" if values else ""
        cells.append(f"{environment} `{json.dumps(values)}`")
    return " · ".join(cells)


def _model_rows(model: type[BaseModel], path: str, *, per_environment: dict[str, Any] | None = None,
                sub: tuple[str, ...] = ()) -> list[str]:
    rows, nested = [], []
    for name, field in model.model_fields.items():
        alias = field.alias or name
        key = f"{path}.{alias}"
        default = (per_environment and _per_environment(per_environment, (*sub, alias))) or _default(field)
        rows.append(f"| `{key}` | {_type_name(field.annotation)} | {default} | {field.description or ''} |")
        for inner in _nested_models(field.annotation):
            nested.append((inner, key + ("[]" if typing.get_origin(field.annotation) is tuple else ""), alias))
    # The variants of a tagged union share keys (`type` among them): one row per key, the tags together.
    merged: dict[str, list[str]] = {}
    for inner, key, alias in nested:
        for row in _model_rows(inner, key, per_environment=per_environment, sub=(*sub, alias)):
            cells = row.split(" | ")
            if cells[0] in merged and merged[cells[0]][1] != cells[1]:
                merged[cells[0]][1] += f" \\| {cells[1]}"
            merged.setdefault(cells[0], cells)
    return rows + [" | ".join(cells) for cells in merged.values()]


def _nested_models(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _nested_models(arg)]


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _nested_model(arg)
        if found is not None:
            return found
    return None


# Structured keys whose defaults depend on the stack's environment.
PER_ENVIRONMENT_DEFAULTS: dict[str, dict[str, Any]] = {"observability": ENVIRONMENT_DEFAULTS,
                                                       "autoscaling": AUTOSCALING_DEFAULTS}


def config_reference(project_config: dict[str, Any]) -> str:
    """Markdown tables of every config key: Pulumi.yaml's scalar keys, then the structured ones."""
    lines = ["| key | type | default | description |", "| --- | --- | --- | --- |",
             "| `aws:region` | string | required | AWS region of every resource in the stack (for example "
             "us-east-1). |"]
    for key, declaration in project_config.items():
        default = declaration.get("default", "required") if isinstance(declaration, dict) else "required"
        shown = "required" if default == "required" else f"`{json.dumps(default)}`"
        lines.append(f"| `{key}` | {declaration.get('type', '')} | {shown} | {declaration.get('description', '')} |")
    for title, model, keys in (("platform", PlatformConfig, PLATFORM_KEYS), ("team", TeamConfig, TEAM_KEYS)):
        lines += ["", f"Structured keys of {title} stacks (objects; validated by `infra/config/`):", "",
                  "| key | type | default | description |", "| --- | --- | --- | --- |"]
        for key in keys:
            field = next(f for n, f in model.model_fields.items() if (f.alias or n) == key)
            inner = _nested_model(field.annotation)
            per_environment = PER_ENVIRONMENT_DEFAULTS.get(key)
            default = "per environment" if per_environment else _default(field)
            lines.append(f"| `ai-platform:{key}` | {_type_name(field.annotation)} | {default} | "
                         f"{(inner or model).__doc__.splitlines()[0]} |")
            if inner is not None:
                is_list = typing.get_origin(field.annotation) is tuple
                lines += _model_rows(inner, f"ai-platform:{key}" + ("[]" if is_list else ""),
                                     per_environment=per_environment)
    return "\n".join(lines)


def versions_table() -> str:
    lines = ["| component | kind | version | source |", "| --- | --- | --- | --- |"]
    lines += [f"| {c.chart.rsplit('/', 1)[-1]} | Helm chart | `{c.version}` | {c.repository or c.chart} |"
              for c in HELM_CHARTS]
    lines += [f"| {r.image} | ServingRuntime `{r.name}` image | `{r.tag}`, `{r.gpu_tag}` | {r.docs} |"
              for r in SERVING_RUNTIMES]
    lines += [f"| {a.name}{f' (Kubernetes {a.cluster_version})' if a.cluster_version else ''} | EKS add-on | "
              f"`{a.version}` | {a.docs} |" for a in EKS_ADDONS]
    lines.append(f"| Elasticsearch, Kibana, Filebeat | Elastic Stack (run by ECK) | `{ELASTIC_STACK_VERSION}` | "
                 f"{ELASTIC_STACK_DOCS} |")
    lines += [f"| {i.image} | container image | `{i.tag}` | {i.docs} |" for i in CONTAINER_IMAGES]
    lines += [f"| EKS-optimized {a.family.upper()} (Karpenter nodes) | AMI release | `{a.alias}` | {a.docs} |"
              for a in NODE_AMIS]
    lines.append(f"| Kubernetes (EKS) | cluster version | {', '.join(f'`{v}`' for v in SUPPORTED_EKS_VERSIONS)} "
                 "| https://docs.aws.amazon.com/eks/latest/userguide/kubernetes-versions.html |")
    return "\n".join(lines)


def policies_table() -> str:
    """One row per policy of the pack: what it checks, how severe, which frameworks it maps to."""
    from pulumi_policy import StackValidationPolicy

    from infra.preview.policy_gate import frameworks_of
    from policies.registry import ALL_POLICIES

    lines = ["| policy | severity | scope | frameworks | checks |", "| --- | --- | --- | --- | --- |"]
    for p in sorted(ALL_POLICIES, key=lambda p: p.name):
        scope = "stack" if isinstance(p, StackValidationPolicy) else "resource"
        severity = p.severity.value if p.severity is not None else ""
        lines.append(f"| `{p.name}` | {severity} | {scope} | {', '.join(frameworks_of(p))} | {p.description} |")
    return "\n".join(lines)


def _replace(text: str, name: str, body: str) -> str:
    start, end = MARK.format(name=name, edge="start"), MARK.format(name=name, edge="end")
    head, found, rest = text.partition(start)
    if not found or end not in rest:
        raise ValueError(f"README.md lacks the markers {start} … {end}")
    return f"{head}{start}\n{body}\n{end}{rest.partition(end)[2]}"


def update_readme(readme: Path, project: Any, *, check: bool = False) -> bool:
    """Regenerate the marked README sections; return whether they changed (written unless ``check``)."""
    text = readme.read_text()
    new = _replace(text, "config-reference", config_reference(project.declared_config))
    new = _replace(new, "versions", versions_table())
    new = _replace(new, "policies", policies_table())
    if new != text and not check:
        readme.write_text(new)
    return new != text


__all__ = ["config_reference", "update_readme", "versions_table"]
