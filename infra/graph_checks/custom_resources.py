"""Check "custom-resources": every custom resource of a stack is one its CRD's schema accepts, unknown fields rejected.

A CustomResource is sent as we write it, and the API server checks it against the openAPIV3Schema of its CRD only
at `pulumi up`, after everything before it was created. With strict field validation (kubectl's default since 1.27,
https://kubernetes.io/docs/reference/using-api/api-concepts/#field-validation) a misspelt field fails the update;
without it the field is pruned silently and the setting we meant never applies (a NodePool ``limit`` instead of
``limits`` is a pool without a GPU bound). This check finds both before a deploy: it reads each record whose type is
``kubernetes:<group>/<version>:<Kind>`` where ``<group>`` has a CRD file in the folder named by ``AIP_CRDS_DIR``
(``<group>_<plural>.yaml``, unmodified upstream files at the pinned releases) and validates the object against that
CRD's schema, turned into JSON Schema by :func:`to_json_schema`.

What a CRD's schema says and JSON Schema does not express the same way is translated as the API server reads it
(https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#specifying-a-structural-schema):
an object that declares ``properties`` has no other fields unless ``x-kubernetes-preserve-unknown-fields``;
``x-kubernetes-int-or-string`` takes either; ``nullable`` admits null. Go regular expressions Python cannot compile
(inline flags mid-pattern) are left out. The CRD's CEL rules (``x-kubernetes-validations``) are then evaluated over
the defaulted object (:mod:`infra.graph_checks.crd_rules`), once it matches the schema.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jsonschema
import yaml

from infra.graph_checks.crd_rules import rule_violations
from infra.graph_checks.findings import Finding
from infra.preview.render import SECRET, UNKNOWN, plain

if TYPE_CHECKING:
    from infra.preview.runner import PreviewResult, ResourceRecord

CHECK = "custom-resources"
CRDS_ENV = "AIP_CRDS_DIR"

# `kubernetes:<group>/<version>:<Kind>`; core and the API server's own dotted groups have no CRD file anyway.
_TYPE_TOKEN = re.compile(r"^kubernetes:(?P<group>[^/:]+)/(?P<version>[^/:]+):(?P<kind>[A-Za-z0-9]+)$")
# Keys of a schema node whose values are schemas themselves, one or a list of them.
_SCHEMA_KEYS = ("items", "not")
_SCHEMA_LIST_KEYS = ("allOf", "anyOf", "oneOf")
# Schema annotations with no meaning for validation (`default` is applied by the API server, not checked).
_DROPPED_KEYS = {"description", "default", "example", "nullable", "format", "exclusiveMinimum", "exclusiveMaximum"}


@dataclass(frozen=True)
class CrdVersion:
    """One version of a CRD: whether the API server serves it, a validator of its objects and its schema as written."""

    served: bool
    validator: jsonschema.protocols.Validator
    schema: Mapping[str, Any]


def crds_dir() -> Path | None:
    """The CRD folder named by ``AIP_CRDS_DIR``, or None where it is unset or absent."""
    folder = os.environ.get(CRDS_ENV)
    return Path(folder) if folder and Path(folder).is_dir() else None


def _compiles(pattern: str) -> bool:
    try:
        re.compile(pattern)
    except re.error:
        # Go allows inline flags mid-pattern (`^(?i)...`); Python does not. Such checks are left out.
        return False
    return True


def to_json_schema(node: Mapping[str, Any]) -> dict[str, Any]:
    """One openAPIV3Schema node as JSON Schema that rejects unknown fields, as strict field validation does.

    The walk follows the schema's structure (``properties`` maps field names to schemas), so a field named like a
    schema keyword (``type``, ``items``, ``format`` all occur in upstream CRDs) stays a field.
    """
    schema: dict[str, Any] = {k: v for k, v in node.items() if not k.startswith("x-kubernetes-")
                              and k not in _DROPPED_KEYS and k not in _SCHEMA_KEYS and k not in _SCHEMA_LIST_KEYS
                              and k not in {"properties", "additionalProperties", "pattern"}}
    if "properties" in node:
        schema["properties"] = {name: to_json_schema(child) for name, child in node["properties"].items()}
    for key in _SCHEMA_KEYS:
        if isinstance(node.get(key), Mapping):
            schema[key] = to_json_schema(node[key])
    for key in _SCHEMA_LIST_KEYS:
        if key in node:
            schema[key] = [to_json_schema(child) for child in node[key]]
    additional = node.get("additionalProperties")
    if isinstance(additional, Mapping):
        schema["additionalProperties"] = to_json_schema(additional)
    elif additional is not None:
        schema["additionalProperties"] = additional
    elif node.get("type") == "object" and "properties" in node and not node.get("x-kubernetes-preserve-unknown-fields"):
        schema["additionalProperties"] = False
    if "pattern" in node and _compiles(node["pattern"]):
        schema["pattern"] = node["pattern"]
    # OpenAPI 3.0 writes exclusive bounds as booleans beside minimum/maximum; JSON Schema as the bound itself.
    for bound, exclusive in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        if node.get(exclusive) is True and bound in node:
            schema[exclusive] = schema.pop(bound)
    if node.get("x-kubernetes-list-type") == "set":
        schema["uniqueItems"] = True
    if node.get("x-kubernetes-int-or-string"):
        schema.pop("type", None)
        schema["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.get("x-kubernetes-embedded-resource"):
        # An embedded object always admits its own apiVersion, kind and metadata.
        schema.setdefault("properties", {})
        for field in ("apiVersion", "kind"):
            schema["properties"].setdefault(field, {"type": "string"})
        schema["properties"].setdefault("metadata", {"type": "object"})
    if node.get("nullable"):
        if "type" in schema:
            schema["type"] = [schema["type"], "null"]
        elif "anyOf" in schema:
            schema["anyOf"] = [*schema["anyOf"], {"type": "null"}]
        if "enum" in schema:
            schema["enum"] = [*schema["enum"], None]
    return schema


@functools.cache
def crd_versions(folder: str, group: str) -> dict[tuple[str, str], CrdVersion]:
    """Every (apiVersion, kind) the CRD files of ``group`` in ``folder`` define (files ``<group>_<plural>.yaml``)."""
    found = {}
    for path in sorted(Path(folder).glob(f"{group}_*.yaml")):
        for crd in yaml.load_all(path.read_text(), Loader=yaml.CSafeLoader):
            if not crd or crd.get("kind") != "CustomResourceDefinition" or crd["spec"]["group"] != group:
                continue
            kind = crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                written = version.get("schema", {}).get("openAPIV3Schema", {"type": "object"})
                found[(f"{group}/{version['name']}", kind)] = CrdVersion(
                    served=bool(version.get("served", True)),
                    validator=jsonschema.Draft7Validator(to_json_schema(written)), schema=written)
    return found


def has_crds(folder: Path, group: str) -> bool:
    """Whether ``folder`` holds a CRD file of ``group``."""
    return "." in group and _has_crd_files(str(Path(folder).resolve()), group)


@functools.cache
def _has_crd_files(folder: str, group: str) -> bool:
    return any(Path(folder).glob(f"{group}_*.yaml"))


def render_path(path: Iterable[str | int]) -> str:
    """A field path as kubectl explains it: ``spec.limits["nvidia.com/gpu"]``, list items as ``[i]``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", part):
            text += ("." if text else "") + part
        else:
            text += f'["{part}"]'
    return text or "(the object)"


def _unexpected_fields(error: jsonschema.ValidationError) -> list[str]:
    declared = set(error.schema.get("properties", {}))
    patterns = [re.compile(p) for p in error.schema.get("patternProperties", {})]
    return sorted(k for k in error.instance if k not in declared and not any(p.search(k) for p in patterns))


def schema_violations(manifest: Mapping[str, Any], validator: jsonschema.protocols.Validator,
                      *, undecided: Iterable[Any] = ()) -> list[tuple[str, str]]:
    """(field path, complaint) for every way ``manifest`` breaks its schema, in path order.

    Args:
        manifest: The object as it would be sent.
        validator: Its CRD version's validator (:func:`crd_versions`).
        undecided: Placeholders for values not known before a deploy (unknown outputs, masked secrets); a
            complaint about one of them is no finding.
    """
    placeholders = list(undecided)
    found = []
    for error in validator.iter_errors(dict(manifest)):
        error = jsonschema.exceptions.best_match([error])
        if any(error.instance == p for p in placeholders):
            continue
        path = list(error.absolute_path)
        if error.validator == "additionalProperties" and error.validator_value is False:
            found += [(render_path([*path, name]), "unknown field: the CRD schema does not define it")
                      for name in _unexpected_fields(error)]
        else:
            found.append((render_path(path), error.message))
    return sorted(set(found))


def check_manifest(manifest: Mapping[str, Any], folder: Path, *,
                   undecided: Iterable[Any] = ()) -> list[tuple[str, str]]:
    """(field path, complaint) for one custom resource against its CRD in ``folder`` (empty where none applies).

    An object whose group has CRD files but no served version of its kind is itself a violation: the API server
    would refuse it as an unknown resource.
    """
    api_version, kind = str(manifest.get("apiVersion", "")), str(manifest.get("kind", ""))
    group = api_version.rpartition("/")[0]
    if not has_crds(folder, group):
        return []
    versions = crd_versions(str(Path(folder).resolve()), group)
    version = versions.get((api_version, kind))
    if version is None or not version.served:
        served = sorted(v for (v, k), crd in versions.items() if k == kind and crd.served)
        return [("apiVersion", f"the {group} CRDs serve no {kind} at {api_version}"
                               f" (served: {', '.join(served) or 'none'})")]
    broken = schema_violations(manifest, version.validator, undecided=undecided)
    if broken:
        # Rules read fields as their schema types them: over a mistyped field they say nothing more.
        return broken
    return [(render_path(v.path), f"{v.message} (CEL rule)")
            for v in rule_violations(version.schema, manifest, undecided=undecided)]


def manifest_of(record: ResourceRecord) -> dict[str, Any] | None:
    """The object a record sends to the API server, or None where its type is no ``<group>/<version>:<Kind>``."""
    match = _TYPE_TOKEN.match(record.type)
    if match is None or match["group"] == "helm.sh":
        return None
    manifest = _without_nulls(plain(record.inputs))
    manifest.setdefault("apiVersion", f"{match['group']}/{match['version']}")
    manifest.setdefault("kind", match["kind"])
    return manifest


def _without_nulls(value: Any) -> Any:
    # The provider drops nulls before sending an object; the API server never sees them.
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def check_custom_resources(result: PreviewResult, crds_folder: Path) -> list[Finding]:
    """Check every custom resource of a stack's preview whose group has a CRD file in ``crds_folder``.

    Returns:
        One finding per field path a schema rejects, naming the resource's URN, its kind, the path and why.
    """
    findings = []
    for record in result.resources:
        manifest = manifest_of(record)
        if manifest is None:
            continue
        for path, complaint in check_manifest(manifest, crds_folder, undecided=(UNKNOWN, SECRET)):
            findings.append(Finding(CHECK, record.urn, f"{manifest['kind']} {path}: {complaint} "
                                                       f"(CRD schema of {manifest['apiVersion']})"))
    return findings
