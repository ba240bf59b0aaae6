"""Helm values as Helm sees them: the merge of our values into a chart's defaults, value paths, and what a pinned
chart's upstream values.yaml (commented-out keys included) and values.schema.json document.

Pure functions over plain dicts and files; the chart values check (:mod:`infra.graph_checks.chart_values`) builds
on them.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml

ValuePath = tuple[str | int, ...]


class MissingUpstreamValues(Exception):
    """The upstream values.yaml of a pinned chart (or of one of its subcharts) is not in the charts folder."""

    def __init__(self, path: Path):
        super().__init__(str(path))
        self.path = path


def helm_merge(defaults: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The values Helm renders with: maps merge key by key, the override wins, a null deletes the key.

    Lists and scalars are replaced whole, never merged item by item.
    """
    merged = copy.deepcopy(dict(defaults))
    for key, value in overrides.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping):
            below = merged.get(key)
            merged[key] = helm_merge(below if isinstance(below, Mapping) else {}, value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def value_paths(values: Mapping[str, Any], prefix: ValuePath = ()) -> Iterator[tuple[ValuePath, Any]]:
    """Every map key of a values tree, depth first, with its value; lists are leaves (Helm replaces them whole)."""
    for key, value in values.items():
        path = (*prefix, str(key))
        yield path, value
        if isinstance(value, Mapping):
            yield from value_paths(value, path)


def lookup(values: Any, path: ValuePath) -> tuple[bool, Any]:
    """``(True, value)`` at ``path`` of a values tree, ``(False, None)`` where it does not exist."""
    node = values
    for part in path:
        in_map = isinstance(node, Mapping) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and part < len(node)
        if not (in_map or in_list):
            return False, None
        node = node[part]
    return True, node


def render_path(path: ValuePath) -> str:
    """A value path as `helm --set` writes it: dotted keys, dots inside a key escaped, list items as ``[i]``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + part.replace(".", r"\.")
    return text


_KEY_LINE = re.compile(r"""(?P<dash>(?:-\s+)*)(?P<key>"[^"]+"|'[^']+'|[\w$][\w.\-/$]*)\s*:(?:\s+(?P<value>.*))?$""")
# Words that open a sentence of prose in a comment ("# Note: ...", "# ref: https://...") rather than a key.
_PROSE_WORDS = frozenset({"default", "deprecated", "e.g", "example", "examples", "format", "note", "ref", "see",
                          "syntax", "todo", "usage", "warning"})


def commented_keys(text: str) -> set[ValuePath]:
    """Value paths that a values.yaml documents only as commented-out keys.

    Charts document optional keys as comments (``# capabilities:`` under ``securityContext: {}``). A comment's
    nesting comes from its indentation: the column of ``#`` plus the spaces after it beyond the first, so
    ``#   add:`` under ``# capabilities:`` is ``capabilities.add``. ``##`` lines are prose; keys inside list
    items and block scalars are no value paths.
    """
    found: set[ValuePath] = set()
    # Open keys by indentation; a path of None means "inside a list item", where keys are no value paths.
    stack: list[tuple[int, ValuePath | None]] = []
    block_scalar_indent: int | None = None
    for line in text.splitlines():
        content = line.lstrip(" ")
        indent = len(line) - len(content)
        is_comment = content.startswith("#")
        if is_comment:
            if content.startswith("##"):
                continue
            body = content[1:]
            content = body.lstrip(" ")
            indent += max(len(body) - len(content) - 1, 0)
        if not content:
            continue
        if block_scalar_indent is not None:
            if indent > block_scalar_indent:
                continue
            block_scalar_indent = None
        match = _KEY_LINE.match(content)
        if match is None and not content.startswith("-"):
            continue
        while stack and stack[-1][0] >= indent:
            stack.pop()
        parent = stack[-1][1] if stack else ()
        if match is None or match["dash"] or parent is None:
            stack.append((indent, None))
        else:
            path = (*parent, match["key"].strip("\"'"))
            stack.append((indent, path))
            value = (match["value"] or "").strip()
            if is_comment and path[-1].lower() not in _PROSE_WORDS and not value.startswith(("http:", "https:")):
                found.add(path)
        if match is not None and (match["value"] or "").lstrip().startswith(("|", ">")):
            block_scalar_indent = indent
    return found


def chart_name(chart: str) -> str:
    """The chart's own name: ``oci://ghcr.io/kserve/charts/kserve-resources`` -> ``kserve-resources``."""
    return chart.rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class UpstreamChart:
    """A pinned chart's defaults, subcharts folded in under their alias, as Helm computes them.

    Attributes:
        name: Chart name.
        version: Pinned version.
        defaults: values.yaml, each subchart's values.yaml under its alias (the parent's section wins) and
            every chart's ``global`` merged into one.
        documented: Every value path of those files, commented-out keys included.
        schemas: ``(where it applies, validator of values.schema.json)`` of the chart and of each subchart that
            ships one.
    """

    name: str
    version: str
    defaults: dict[str, Any]
    documented: frozenset[ValuePath]
    schemas: tuple[tuple[ValuePath, Any], ...] = ()
    _parents: frozenset[ValuePath] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_parents", frozenset(path[:-1] for path in self.documented))

    def documents_keys_under(self, path: ValuePath) -> bool:
        """Whether values.yaml documents any key below ``path`` (as a value or a commented-out key)."""
        return path in self._parents


def load_upstream_chart(charts_dir: Path, chart: str, version: str) -> UpstreamChart:
    """Read a pinned chart from ``<charts_dir>/<chart>-<version>/``.

    Raises:
        MissingUpstreamValues: its values.yaml, or a subchart's, is not there.
    """
    return _load(Path(charts_dir).resolve(), chart_name(chart), version)


@functools.cache
def _load(charts_dir: Path, name: str, version: str) -> UpstreamChart:
    defaults, documented, schemas = _read_chart_folder(charts_dir / f"{name}-{version}")
    validators = tuple((where, jsonschema.validators.validator_for(schema)(schema)) for where, schema in schemas)
    return UpstreamChart(name, version, defaults, frozenset(documented), validators)


def _read_chart_folder(folder: Path) -> tuple[dict[str, Any], set[ValuePath], list[tuple[ValuePath, Any]]]:
    values_file = folder / "values.yaml"
    if not values_file.is_file():
        raise MissingUpstreamValues(values_file)
    text = values_file.read_text()
    defaults = yaml.load(text, Loader=yaml.CSafeLoader) or {}
    documented = {path for path, _ in value_paths(defaults)} | commented_keys(text)
    schema_file = folder / "values.schema.json"
    schemas = [((), json.loads(schema_file.read_text()))] if schema_file.is_file() else []
    subcharts = folder / "charts"
    for subchart in sorted(subcharts.iterdir()) if subcharts.is_dir() else ():
        alias = subchart.name
        sub_defaults, sub_documented, sub_schemas = _read_chart_folder(subchart)
        # Helm hands a subchart its defaults overridden by the parent's section, and shares `global` with it.
        sub_global = sub_defaults.pop("global", None) or {}
        defaults[alias] = helm_merge(sub_defaults, defaults.get(alias) or {})
        defaults["global"] = helm_merge(sub_global, defaults.get("global") or {})
        documented |= {path if path[0] == "global" else (alias, *path) for path in sub_documented}
        schemas += [((alias, *where), schema) for where, schema in sub_schemas]
    return defaults, documented, schemas


def _resolve(root: Mapping[str, Any], node: Any) -> Any:
    while isinstance(node, Mapping) and str(node.get("$ref", "")).startswith("#"):
        target: Any = root
        for part in node["$ref"][1:].split("/")[1:]:
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def schema_verdict(schema: Mapping[str, Any], path: ValuePath) -> str:
    """``known``, ``free`` (below a map of any keys) or ``unknown``: what a values.schema.json says of a path."""
    node: Any = schema
    for key in path:
        node = _resolve(schema, node)
        if not isinstance(node, Mapping):
            return "free"
        branches = [node, *(_resolve(schema, b) for k in ("allOf", "anyOf", "oneOf") for b in node.get(k, ()))]
        branches = [b for b in branches if isinstance(b, Mapping)]
        if not any({"properties", "patternProperties", "additionalProperties"} & b.keys() for b in branches):
            return "free"
        node = next((found for b in branches if (found := _property_schema(b, str(key))) is not None), None)
        if node is None:
            return "unknown"
    return "known"


def _property_schema(schema: Mapping[str, Any], key: str) -> Any:
    if key in schema.get("properties", {}):
        return schema["properties"][key]
    for pattern, below in schema.get("patternProperties", {}).items():
        if re.search(pattern, key):
            return below
    extra = schema.get("additionalProperties")
    return extra if isinstance(extra, Mapping) or extra is True else None
