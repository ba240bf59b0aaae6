"""Check "custom-resources": every shipped custom resource matches its upstream CRD; a broken one is named by path.

The schema translation is tested on small hand-written schemas; the check itself on hand-built NodePools and
ScaledObjects (real CRDs from AIP_CRDS_DIR, skipped without it, failing under CI) and on every shipped stack.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
import pytest
from pulumi.output import Unknown

from infra.graph_checks import run_deploy_checks
from infra.graph_checks.custom_resources import (
    CHECK,
    check_custom_resources,
    check_manifest,
    render_path,
    to_json_schema,
)
from tests.graph_checks.conftest import STACKS, named, record, result_of, seeded, with_inputs

NODE_POOL_TYPE = "kubernetes:karpenter.sh/v1:NodePool"
NODE_POOL: dict[str, Any] = {
    "apiVersion": "karpenter.sh/v1", "kind": "NodePool",
    "metadata": {"name": "l4", "labels": {"ai-platform.io/team": "platform"}},
    "spec": {
        "template": {
            "metadata": {"labels": {"ai-platform.io/accelerator": "nvidia", "ai-platform.io/gpu-pool": "l4"}},
            "spec": {
                "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "l4"},
                "requirements": [
                    {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["g6.xlarge"]},
                    {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]},
                ],
                "taints": [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}],
                "expireAfter": "720h", "terminationGracePeriod": "24h",
            },
        },
        "limits": {"nvidia.com/gpu": "4", "nodes": "4"},
        "disruption": {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "10m"},
    },
}
SCALED_OBJECT: dict[str, Any] = {
    "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
    "metadata": {"name": "digits", "namespace": "vision"},
    "spec": {"scaleTargetRef": {"name": "digits-predictor"}, "minReplicaCount": 1, "maxReplicaCount": 4,
             "triggers": [{"type": "prometheus", "metadata": {"serverAddress": "http://prometheus:9090",
                                                              "query": "sum(up)", "threshold": "4"}}]},
}


def changed(manifest: dict[str, Any], path: list[str | int], value: Any) -> dict[str, Any]:
    result = copy.deepcopy(manifest)
    target = result
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return result


# --- the schema translation -----------------------------------------------------------------------------------

def validator(schema: dict[str, Any]) -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(to_json_schema(schema))


def test_an_object_with_properties_rejects_fields_it_does_not_declare():
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    assert validator(schema).is_valid({"a": "x"})
    assert not validator(schema).is_valid({"a": "x", "b": 1})
    preserved = {**schema, "x-kubernetes-preserve-unknown-fields": True}
    assert validator(preserved).is_valid({"a": "x", "b": 1})


def test_fields_named_like_schema_keywords_stay_fields():
    # `type`, `items` and `format` are field names in upstream CRDs (ECK's Beat, KServe's storage spec).
    schema = {"type": "object", "properties": {"type": {"type": "string"}, "items": {"type": "array"},
                                               "pattern": {"type": "string", "pattern": "^(?i)x$"}}}
    check = validator(schema)
    assert check.is_valid({"type": "filebeat", "items": [], "pattern": "anything"})
    assert not check.is_valid({"type": 3})
    assert not check.is_valid({"typo": "filebeat"})


def test_int_or_string_nullable_and_exclusive_bounds_read_as_the_api_server_reads_them():
    assert validator({"x-kubernetes-int-or-string": True}).is_valid(3)
    assert validator({"x-kubernetes-int-or-string": True}).is_valid("10%")
    assert not validator({"x-kubernetes-int-or-string": True}).is_valid(1.5)
    assert validator({"type": "string", "nullable": True}).is_valid(None)
    assert not validator({"type": "string"}).is_valid(None)
    assert not validator({"type": "integer", "minimum": 0, "exclusiveMinimum": True}).is_valid(0)
    assert validator({"type": "integer", "minimum": 0, "exclusiveMinimum": True}).is_valid(1)
    assert not validator({"type": "array", "x-kubernetes-list-type": "set"}).is_valid(["a", "a"])


def test_paths_are_rendered_as_kubectl_explains_them():
    assert render_path(["spec", "limits", "nvidia.com/gpu"]) == 'spec.limits["nvidia.com/gpu"]'
    assert render_path(["spec", "triggers", 0, "metadata"]) == "spec.triggers[0].metadata"
    assert render_path([]) == "(the object)"


# --- one object against its real CRD -----------------------------------------------------------------------------

def test_a_well_formed_node_pool_and_scaled_object_pass(crds_dir):
    assert check_manifest(NODE_POOL, crds_dir) == []
    assert check_manifest(SCALED_OBJECT, crds_dir) == []


@pytest.mark.parametrize(("manifest", "path", "value", "expected"), [
    (NODE_POOL, ["spec", "limit"], {"nvidia.com/gpu": "4"},
     [("spec.limit", "unknown field: the CRD schema does not define it")]),
    (NODE_POOL, ["spec", "template", "spec", "expireAfter"], 720,
     [("spec.template.spec.expireAfter", "720 is not of type 'string'")]),
    (NODE_POOL, ["spec", "template", "spec", "expireAfter"], "30d",
     [("spec.template.spec.expireAfter", "'30d' does not match '^(([0-9]+(s|m|h))+|Never)$'")]),
    (NODE_POOL, ["spec", "limits", "nvidia.com/gpu"], "four",
     [('spec.limits["nvidia.com/gpu"]', "'four' does not match "
       "'^(\\\\+|-)?(([0-9]+(\\\\.[0-9]*)?)|(\\\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\\\+|-)?(([0-9]+(\\\\.[0-9]*)?)"
       "|(\\\\.[0-9]+))))?$'")]),
    (SCALED_OBJECT, ["spec", "minReplicaCount"], "1", [("spec.minReplicaCount", "'1' is not of type 'integer'")]),
    (SCALED_OBJECT, ["spec", "triggers", 0], {"type": "prometheus", "metdata": {"query": "sum(up)"}},
     [("spec.triggers[0]", "'metadata' is a required property"),
      ("spec.triggers[0].metdata", "unknown field: the CRD schema does not define it")]),
], ids=["unknown-field", "wrong-type", "bad-duration", "bad-quantity", "string-count", "misspelt-required"])
def test_a_broken_object_is_reported_with_its_path(crds_dir, manifest, path, value, expected):
    assert check_manifest(changed(manifest, path, value), crds_dir) == expected


def test_a_version_the_crd_does_not_serve_is_reported(crds_dir):
    old = changed(NODE_POOL, ["apiVersion"], "karpenter.sh/v1beta1")
    assert check_manifest(old, crds_dir) == [
        ("apiVersion", "the karpenter.sh CRDs serve no NodePool at karpenter.sh/v1beta1 (served: karpenter.sh/v1)")]


def test_a_group_without_crd_files_is_not_judged(crds_dir):
    assert check_manifest({"apiVersion": "example.com/v1", "kind": "Widget", "spec": {"x": 1}}, crds_dir) == []


# --- the check over previews ----------------------------------------------------------------------------------

def test_each_finding_names_the_resource_its_kind_the_path_and_the_complaint(crds_dir):
    broken = changed(NODE_POOL, ["spec", "template", "spec", "requirements", 0, "operator"], "Inn")
    pool = record(NODE_POOL_TYPE, "gpu-l4", inputs=broken)
    [finding] = check_custom_resources(result_of(pool), crds_dir)
    assert finding.check == CHECK
    assert finding.subject == pool.urn
    assert finding.message == (
        "NodePool spec.template.spec.requirements[0].operator: 'Inn' is not one of ['Gte', 'Lte', 'In', 'NotIn', "
        "'Exists', 'DoesNotExist', 'Gt', 'Lt'] (CRD schema of karpenter.sh/v1)")


def test_values_unknown_before_a_deploy_are_not_findings_and_nulls_are_not_sent(crds_dir):
    # An output of another resource (here: the weight) is unknown in a preview; null fields never reach the server.
    pending = changed(changed(NODE_POOL, ["spec", "weight"], Unknown()), ["spec", "replicas"], None)
    assert check_custom_resources(result_of(record(NODE_POOL_TYPE, "gpu-l4", inputs=pending)), crds_dir) == []


@pytest.mark.parametrize("stack", STACKS)
def test_every_custom_resource_of_every_shipped_stack_matches_its_crd(preview, crds_dir, stack):
    assert [f.render() for f in check_custom_resources(preview(stack), crds_dir)] == []


def test_a_defect_seeded_into_a_shipped_stack_fails_its_deploy_checks(preview, stack_config, crds_dir):
    result = preview("prod")
    monitor = named(result, "kubernetes:monitoring.coreos.com/v1:ServiceMonitor",
                    "aip-prod-gpu-metrics-service-monitor")
    spec = {**monitor.inputs["spec"], "namespaceSelectors": {"any": True}}
    broken = seeded(result, replace=[with_inputs(monitor, spec=spec)])
    findings = run_deploy_checks(broken, stack_config("prod"), crds_dir=crds_dir)
    assert [f.render() for f in findings if f.check == CHECK] == [
        f"[{CHECK}] {monitor.urn}: ServiceMonitor spec.namespaceSelectors: unknown field: the CRD schema does not "
        "define it (CRD schema of monitoring.coreos.com/v1)"]
    assert run_deploy_checks(broken, stack_config("prod")) == run_deploy_checks(result, stack_config("prod"))
