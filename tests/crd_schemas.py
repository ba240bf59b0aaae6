"""Validate custom resources against upstream CRD schemas, as the API server's strict field validation would.

The schema conversion lives in the deploy check (infra/graph_checks/custom_resources.py); this is its test-side
face. The CRD files are not part of the project; tests read them from the folder in AIP_CRDS_DIR and skip,
saying so, when it is not set (fail, under CI).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema

from infra.graph_checks.custom_resources import CRDS_ENV, crd_versions, has_crds
from infra.graph_checks.custom_resources import crds_dir as configured_crds_dir
from tests.prerequisites import unavailable

__all__ = ["CRDS_ENV", "crds_dir", "is_custom_resource", "validate_custom_resource"]


def crds_dir() -> Path:
    folder = configured_crds_dir()
    if folder is None:
        reason = (f"custom resources are checked against upstream CRD schemas only when {CRDS_ENV} names a "
                  "folder of CRD files (`make crds` fetches them; CI sets it)")
        unavailable(reason)
    return folder


def validate_custom_resource(manifest: dict[str, Any]) -> None:
    """Raise jsonschema.ValidationError when the object has a field its CRD does not define."""
    folder = crds_dir()
    group = manifest["apiVersion"].rpartition("/")[0]
    assert has_crds(folder, group), f"no CRD file of group {group} in {folder}"
    version = crd_versions(str(folder.resolve()), group).get((manifest["apiVersion"], manifest["kind"]))
    assert version is not None, f"no CRD schema for {manifest['apiVersion']} {manifest['kind']}"
    error = jsonschema.exceptions.best_match(version.validator.iter_errors(manifest))
    if error is not None:
        raise error


def is_custom_resource(manifest: dict[str, Any]) -> bool:
    group = manifest["apiVersion"].rpartition("/")[0]
    return "." in group and not group.endswith(".k8s.io")
