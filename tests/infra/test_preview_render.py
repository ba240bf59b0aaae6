"""What `aip preview` prints of secrets: their keys where a manifest needs them, never their values."""

from __future__ import annotations

import json

import kubernetes_validate
import pulumi
from pulumi.runtime.rpc import _special_secret_sig, _special_sig_key

from infra.preview.render import SECRET, kubernetes_objects, plain, to_json, to_manifests
from infra.preview.runner import PreviewResult, ResourceRecord

PASSWORD = "s3cr3t-Pa55w0rd-value"


def secret(value: object) -> dict:
    """A property value as the engine marks a secret."""
    return {_special_sig_key: _special_secret_sig, "value": value}


def preview_of(string_data: object) -> PreviewResult:
    record = ResourceRecord(
        urn="urn:pulumi:dev::ai-platform::kubernetes:core/v1:Secret::db", type="kubernetes:core/v1:Secret",
        name="db", parent="", custom=True, options={},
        inputs={"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "vision"},
                "type": "kubernetes.io/basic-auth", "stringData": string_data})
    return PreviewResult(project="ai-platform", stack="dev", resources=[record], outputs={})


def test_manifest_secret_keeps_its_keys_and_masks_every_value():
    result = preview_of(secret({"username": "ci", "password": PASSWORD}))
    (manifest,) = kubernetes_objects(result)
    assert manifest["stringData"] == {"password": SECRET, "username": SECRET}
    # A valid Secret, so the manifests can be checked (and applied by hand) whole.
    kubernetes_validate.validate(manifest, "1.34", strict=True)
    assert PASSWORD not in to_manifests(result)


def test_secret_whose_keys_are_unknown_is_masked_whole():
    (manifest,) = kubernetes_objects(preview_of(secret(pulumi.output.UNKNOWN)))
    assert manifest["stringData"] == SECRET


def test_single_secret_values_are_masked_in_place():
    (manifest,) = kubernetes_objects(preview_of({"username": "ci", "password": secret(PASSWORD)}))
    assert manifest["stringData"] == {"username": "ci", "password": SECRET}


def test_json_document_masks_secrets_whole():
    result = preview_of(secret({"username": "ci", "password": PASSWORD}))
    assert plain(result.resources[0].inputs)["stringData"] == SECRET
    assert PASSWORD not in to_json(result)
    assert json.loads(to_json(result))["resources"][0]["inputs"]["stringData"] == SECRET
