"""Validate custom resources against upstream CRD schemas, as the API server's strict field validation would.

The CRD files are not part of the project; tests read them from the folder in AIP_CRDS_DIR and skip,
saying so, when it is not set.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from tests.prerequisites import unavailable

CRDS_ENV = "AIP_CRDS_DIR"


def crds_dir() -> Path:
    folder = os.environ.get(CRDS_ENV)
    if not folder or not Path(folder).is_dir():
        reason = (f"custom resources are checked against upstream CRD schemas only when {CRDS_ENV} names a "
                  "folder of CRD files (`make crds` fetches them; CI sets it)")
        unavailable(reason)
    return Path(folder)


def _compiles(pattern: str) -> bool:
    try:
        re.compile(pattern)
    except re.error:
        # Go allows inline flags mid-pattern (`^(?i)...`); Python does not. Such checks are left out.
        return False
    return True


def to_json_schema(node: Any) -> Any:
    """openAPIV3Schema -> JSON Schema that rejects unknown fields (like `kubectl apply --validate=strict`)."""
    if isinstance(node, list):
        return [to_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    schema = {k: to_json_schema(v) for k, v in node.items()
              if not k.startswith("x-kubernetes-") and k not in {"nullable", "pattern"}}
    if "pattern" in node and _compiles(node["pattern"]):
        schema["pattern"] = node["pattern"]
    if node.get("x-kubernetes-int-or-string"):
        schema.pop("type", None)
        schema["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.get("type") == "object" and "properties" in node and "additionalProperties" not in node \
            and not node.get("x-kubernetes-preserve-unknown-fields"):
        schema["additionalProperties"] = False
    if node.get("nullable") and "type" in schema:
        schema["type"] = [schema["type"], "null"]
    return schema


@functools.cache
def _validators(folder: str, group: str) -> dict[tuple[str, str], Any]:
    """Validators for every version and kind of a group (CRD files are named `<group>_<plural>.yaml`)."""
    found = {}
    for path in Path(folder).glob(f"{group}_*.yaml"):
        crd = yaml.load(path.read_text(), Loader=yaml.CSafeLoader)
        kind = crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            schema = to_json_schema(version["schema"]["openAPIV3Schema"])
            found[(f"{group}/{version['name']}", kind)] = jsonschema.Draft7Validator(schema)
    return found


def validate_custom_resource(manifest: dict[str, Any]) -> None:
    """Raise jsonschema.ValidationError when the object has a field its CRD does not define."""
    group = manifest["apiVersion"].rpartition("/")[0]
    validator = _validators(str(crds_dir()), group).get((manifest["apiVersion"], manifest["kind"]))
    assert validator is not None, f"no CRD schema for {manifest['apiVersion']} {manifest['kind']}"
    error = jsonschema.exceptions.best_match(validator.iter_errors(manifest))
    if error is not None:
        raise error


def is_custom_resource(manifest: dict[str, Any]) -> bool:
    group = manifest["apiVersion"].rpartition("/")[0]
    return "." in group and not group.endswith(".k8s.io")
