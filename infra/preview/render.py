"""What `aip preview` prints: a readable summary, one JSON document, or Kubernetes manifests."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from typing import Any

import pulumi
import yaml
from pulumi.runtime.rpc import _special_secret_sig as _SECRET_SIG
from pulumi.runtime.rpc import _special_sig_key as _SIG_KEY
from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from infra.preview.runner import PreviewResult, ResourceRecord

UNKNOWN = "[unknown]"
SECRET = "[secret]"


def plain(value: Any, *, secret_keys: bool = False) -> Any:
    """JSON-ready copy of a deserialized property value (unknowns and secrets marked, 2.0 -> 2).

    A secret is masked whole; with ``secret_keys``, a secret map keeps its keys and masks each value, so a
    Secret's ``stringData`` stays a map of the keys it holds.
    """
    if isinstance(value, dict):
        if value.get(_SIG_KEY) == _SECRET_SIG:
            return _masked(value.get("value")) if secret_keys else SECRET
        return {k: plain(v, secret_keys=secret_keys) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v, secret_keys=secret_keys) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, pulumi.FileAsset):
        return {"fileAsset": value.path}
    return UNKNOWN


def _masked(secret: Any) -> Any:
    """The keys of a secret map with every value masked; any other secret (or an unknown one) masked whole."""
    if isinstance(secret, dict) and secret.get(_SIG_KEY) is None:
        return {str(key): SECRET for key in sorted(secret)}
    return SECRET


def to_document(result: PreviewResult) -> dict[str, Any]:
    """The `--format json` document."""
    return {
        "project": result.project,
        "stack": result.stack,
        "resources": [{"urn": r.urn, "type": r.type, "name": r.name, "parent": r.parent,
                       "inputs": plain(r.inputs), "options": plain(r.options)} for r in result.resources],
        "outputs": plain(result.outputs),
        "warnings": list(result.warnings),
    }


def to_json(result: PreviewResult) -> str:
    return json.dumps(to_document(result), indent=2, sort_keys=False)


def kubernetes_objects(result: PreviewResult) -> list[dict[str, Any]]:
    """Every Kubernetes object the program would send to the API server (Helm releases excluded)."""
    objects = []
    for record in result.resources:
        if record.type.startswith("kubernetes:") and not record.type.startswith("kubernetes:helm.sh/"):
            manifest = _without_nulls(plain(record.inputs, secret_keys=True))
            # The order kubectl users expect: apiVersion, kind, metadata, then the rest.
            head = {k: manifest.pop(k) for k in ("apiVersion", "kind", "metadata") if k in manifest}
            objects.append({**head, **dict(sorted(manifest.items()))})
    return objects


def to_manifests(result: PreviewResult) -> str:
    return yaml.safe_dump_all(kubernetes_objects(result), sort_keys=False, default_flow_style=False)


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def print_summary(result: PreviewResult, console: Console) -> None:
    """Resources grouped by component and type, then the stack outputs."""
    by_urn = {r.urn: r for r in result.resources}
    children: dict[str, list[ResourceRecord]] = defaultdict(list)
    for record in result.resources:
        children[record.parent if record.parent in by_urn else ""].append(record)

    tree = Tree(f"[bold]{result.project}[/] / [bold cyan]{result.stack}[/]  ({len(result.resources)} resources)")
    for top in children[""]:
        if top.custom:
            tree.add(f"{top.type}  [dim]{top.name}[/]")
            continue
        branch = tree.add(f"[bold]{top.name}[/]  [dim]{top.type}[/]")
        counts = Counter(r.type for r in _descendants(top, children))
        for type_token, count in sorted(counts.items()):
            branch.add(f"{count} x {type_token}")
    console.print(tree)

    outputs = Table(title="Stack outputs", show_lines=False, title_justify="left")
    outputs.add_column("output", style="bold")
    outputs.add_column("value", overflow="fold")
    for key, value in plain(result.outputs).items():
        shown = value if isinstance(value, str) else json.dumps(value)
        outputs.add_row(key, shown if len(shown) <= 160 else shown[:157] + "...")
    console.print(outputs)
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/] {warning}")


def _descendants(record: ResourceRecord, children: dict[str, list[ResourceRecord]]) -> list[ResourceRecord]:
    found = []
    for child in children.get(record.urn, []):
        if child.custom:
            found.append(child)
        found += _descendants(child, children)
    return found
