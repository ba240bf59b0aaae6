"""The CRDs' CEL rules: evaluated over the defaulted object on create, with Kubernetes' own functions.

Small hand-written schemas test the evaluator; the real Karpenter and KEDA CRDs (AIP_CRDS_DIR, skipped without
it, failing under CI) test that objects the API server would refuse for a rule are refused here too.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.graph_checks.crd_rules import (
    RuleViolation,
    UnsupportedRule,
    called_functions,
    rule_violations,
    unsupported_functions,
    with_defaults,
)
from infra.graph_checks.custom_resources import check_manifest
from infra.preview.render import UNKNOWN
from tests.graph_checks.test_custom_resources import NODE_POOL, SCALED_OBJECT, changed

NODE_CLASS: dict[str, Any] = {
    "apiVersion": "karpenter.k8s.aws/v1", "kind": "EC2NodeClass",
    "metadata": {"name": "inference-l4"},
    "spec": {
        "role": "aip-dev-karpenter-nodes",
        "amiSelectorTerms": [{"alias": "al2023@v20260714"}],
        "subnetSelectorTerms": [{"tags": {"karpenter.sh/discovery": "aip-dev"}}],
        "securityGroupSelectorTerms": [{"tags": {"karpenter.sh/discovery": "aip-dev"}}],
        "metadataOptions": {"httpEndpoint": "enabled", "httpPutResponseHopLimit": 1, "httpTokens": "required"},
        "blockDeviceMappings": [{"deviceName": "/dev/xvda", "rootVolume": True,
                                 "ebs": {"volumeType": "gp3", "volumeSize": "100Gi", "encrypted": True}}],
    },
}


def _schema(rule: str, **node: Any) -> dict[str, Any]:
    return {"type": "object", "x-kubernetes-validations": [{"rule": rule, "message": "nope"}], **node}


# --- the evaluator ---------------------------------------------------------------------------------------------

def test_a_rule_is_evaluated_with_self_bound_to_the_node_that_declares_it():
    schema = {"type": "object", "properties": {
        "spec": _schema("self.min <= self.max", properties={"min": {"type": "integer"}, "max": {"type": "integer"}})}}

    assert rule_violations(schema, {"spec": {"min": 1, "max": 2}}) == []
    assert rule_violations(schema, {"spec": {"min": 3, "max": 2}}) == [RuleViolation(("spec",), "nope")]


def test_rules_on_list_items_and_map_values_name_the_item():
    schema = {"type": "object", "properties": {
        "items": {"type": "array", "items": _schema("self.size() > 0", type="string")},
        "labels": {"type": "object", "additionalProperties": _schema("!self.startsWith('-')", type="string")}}}

    assert rule_violations(schema, {"items": ["a", ""], "labels": {"ok": "x", "bad": "-x"}}) == [
        RuleViolation(("items", 1), "nope"), RuleViolation(("labels", "bad"), "nope")]


def test_defaults_are_applied_before_the_rules_as_the_api_server_does():
    schema = _schema("self.policy == 'WhenEmpty' || has(self.after)",
                     properties={"policy": {"type": "string", "default": "WhenEmptyOrUnderutilized"},
                                 "after": {"type": "string"}})

    assert with_defaults(schema, {}) == {"policy": "WhenEmptyOrUnderutilized"}
    assert rule_violations(schema, {}) == [RuleViolation((), "nope")]
    assert rule_violations(schema, {"policy": "WhenEmpty"}) == []


def test_a_rule_without_a_message_is_reported_by_its_text():
    schema = {"type": "object", "x-kubernetes-validations": [{"rule": "has(self.a)"}]}

    assert rule_violations(schema, {}) == [RuleViolation((), "failed rule: has(self.a)")]


def test_transition_rules_do_not_apply_on_create():
    assert rule_violations(_schema("self.kind == oldSelf.kind"), {"kind": "A"}) == []


def test_a_rule_that_fails_over_a_value_unknown_before_a_deploy_is_undecided():
    schema = _schema("self.name.startsWith('aip-')", properties={"name": {"type": "string"}})

    assert rule_violations(schema, {"name": UNKNOWN}, undecided=[UNKNOWN]) == []
    assert rule_violations(schema, {"name": "other"}, undecided=[UNKNOWN]) == [RuleViolation((), "nope")]


def test_kubernetes_regex_and_string_functions_behave_as_on_the_api_server():
    schema = {"type": "array", "items": {"type": "string"}, "x-kubernetes-validations": [
        {"rule": "self.all(x, !x.find('^([^/]+)').endsWith('karpenter.sh'))", "message": "restricted"},
        {"rule": "self.all(x, x.split('/').size() <= 2)", "message": "one slash"},
        {"rule": "self.all(x, x.lowerAscii() == x)", "message": "lower case"}]}

    assert rule_violations(schema, ["example.com/a", "b"]) == []
    assert rule_violations(schema, ["karpenter.sh/x"]) == [RuleViolation((), "restricted")]
    assert rule_violations(schema, ["a/b/c"]) == [RuleViolation((), "one slash")]
    assert rule_violations(schema, ["Upper"]) == [RuleViolation((), "lower case")]


def test_a_rule_calling_an_unknown_function_is_a_gap_in_the_check_not_a_broken_object():
    assert called_functions("self.all(x, x.quantity() > 1) && has(self.a)") == {"all", "quantity", "has"}
    assert unsupported_functions("self.all(x, x.quantity() > 1)") == {"quantity"}
    with pytest.raises(UnsupportedRule, match="quantity"):
        rule_violations(_schema("self.x.quantity() > 1"), {"x": "1"})


def _rules(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [v["rule"] for v in node.get("x-kubernetes-validations", [])]
        return own + [rule for child in node.values() for rule in _rules(child)]
    if isinstance(node, list):
        return [rule for child in node for rule in _rules(child)]
    return []


def test_every_rule_of_every_pinned_crd_calls_only_functions_the_check_provides(crds_dir: Path):
    rules = [rule for path in sorted(crds_dir.glob("*.yaml"))
             for crd in yaml.safe_load_all(path.read_text()) for rule in _rules(crd)]

    assert len(rules) > 30  # Karpenter's and KEDA's rules are there to be checked
    assert {rule: unsupported_functions(rule) for rule in rules if unsupported_functions(rule)} == {}


# --- objects the API server would refuse for a rule -------------------------------------------------------------

def test_well_formed_node_pool_node_class_and_scaled_object_keep_every_rule(crds_dir: Path):
    for manifest in (NODE_POOL, NODE_CLASS, SCALED_OBJECT):
        assert check_manifest(manifest, crds_dir) == []


REQUIREMENTS = ["spec", "template", "spec", "requirements"]


@pytest.mark.parametrize(("manifest", "path", "value", "expected"), [
    (NODE_POOL, [*REQUIREMENTS, 1, "key"], "karpenter.sh/anything",
     [("spec.template.spec.requirements[1].key", 'label domain "karpenter.sh" is restricted (CEL rule)')]),
    (NODE_POOL, [*REQUIREMENTS, 1], {"key": "kubernetes.io/hostname", "operator": "In", "values": ["a"]},
     [("spec.template.spec.requirements[1].key", 'label "kubernetes.io/hostname" is restricted (CEL rule)')]),
    (NODE_POOL, [*REQUIREMENTS, 0, "values"], [],
     [("spec.template.spec.requirements", "requirements with operator 'In' must have a value defined (CEL rule)")]),
    (NODE_POOL, ["spec", "template", "metadata", "labels"], {"karpenter.sh/nodepool": "x"},
     [("spec.template.metadata.labels", 'label "karpenter.sh/nodepool" is restricted (CEL rule)')]),
    (NODE_CLASS, ["spec", "instanceProfile"], "aip-nodes",
     [("spec", "must specify exactly one of ['role', 'instanceProfile'] (CEL rule)")]),
    (NODE_CLASS, ["spec", "amiFamily"], "Bottlerocket",
     [("spec", "if set, amiFamily must be 'AL2023' or 'Custom' when using an AL2023 alias (CEL rule)")]),
    (SCALED_OBJECT, ["spec", "minReplicaCount"], 5,
     [("spec", "minReplicaCount must be less than or equal to maxReplicaCount (CEL rule)")]),
], ids=["reserved-domain", "hostname", "empty-in", "reserved-label", "role-and-profile", "ami-family", "min-over-max"])
def test_an_object_breaking_a_crd_rule_is_reported_with_the_crds_message(crds_dir, manifest, path, value, expected):
    found = check_manifest(changed(copy.deepcopy(manifest), path, value), crds_dir)

    assert found == expected


def test_a_rule_over_a_value_unknown_before_a_deploy_is_no_finding(crds_dir: Path):
    # As the check receives it: an output of another resource rendered as the UNKNOWN placeholder.
    pending = changed(copy.deepcopy(NODE_CLASS), ["spec", "amiSelectorTerms", 0, "alias"], UNKNOWN)

    assert check_manifest(pending, crds_dir, undecided=[UNKNOWN]) == []
    assert check_manifest(changed(pending, ["spec", "amiSelectorTerms", 0, "alias"], "latest"), crds_dir) != []
