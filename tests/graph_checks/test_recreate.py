"""Check "recreate": fixed-name resources are neither retained on delete nor replaced create-before-delete."""

from __future__ import annotations

import pytest

from infra.graph_checks import Finding, ResourceGraph
from infra.graph_checks.recreate import FIXED_NAME_INPUTS, check, fixed_name, problems
from tests.graph_checks.conftest import STACKS, named, record, result_of, seeded, with_inputs, with_options

ALIAS = "aws:kms/alias:Alias"
BUCKET = "aws:s3/bucket:Bucket"
RETAINED = ("is retained on delete with the fixed name {name!r}: it outlives `pulumi destroy` and the next "
            "`pulumi up` fails to create it again; drop retainOnDelete (or protect it)")
NO_DBR = ("has the fixed name {name!r} but not deleteBeforeReplace: a replacement would be created while the old "
          "one still holds the name")


# -- pure functions ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("type_token", "inputs", "expected"), [
    (ALIAS, {"name": "alias/aip-dev-models"}, "alias/aip-dev-models"),
    ("aws:eks/cluster:Cluster", {"name": "aip-dev"}, "aip-dev"),
    ("aws:eks/nodeGroup:NodeGroup", {"nodeGroupName": "system"}, "system"),
    ("aws:eks/nodeGroup:NodeGroup", {"clusterName": "aip-dev"}, None),  # auto-named
    (BUCKET, {"bucket": "aip-models"}, "aip-models"),
    (BUCKET, {}, None),
    ("aws:iam/role:Role", {"namePrefix": "aip-"}, None),  # a prefix gets a unique suffix
    ("aws:ec2/subnet:Subnet", {"name": "not-a-name-input"}, None),  # not an account-unique name
])
def test_fixed_name(type_token, inputs, expected):
    assert fixed_name(record(type_token, "r", inputs=inputs)) == expected


def test_every_fixed_name_input_is_an_engine_name():
    # Inputs arrive with engine-side (camelCase) names: a snake_case entry would never match.
    assert all("_" not in key for key in FIXED_NAME_INPUTS.values())


@pytest.mark.parametrize(("options", "expected"), [
    ({"deleteBeforeReplace": True}, []),
    ({}, [NO_DBR.format(name="alias/a")]),
    ({"retainOnDelete": True, "deleteBeforeReplace": True}, [RETAINED.format(name="alias/a")]),
    ({"retainOnDelete": True}, [RETAINED.format(name="alias/a"), NO_DBR.format(name="alias/a")]),
    # The engine refuses to delete or replace a protected resource: neither can collide.
    ({"protect": True, "retainOnDelete": True}, []),
    # A read resource is never created by the stack.
    ({"read": True, "retainOnDelete": True}, []),
])
def test_problems(options, expected):
    assert problems(record(ALIAS, "a", inputs={"name": "alias/a"}, **options)) == expected


def test_retained_auto_named_resources_are_fine():
    bucket = record(BUCKET, "models", retainOnDelete=True)
    assert check(ResourceGraph(result_of(bucket)), None) == []


# -- shipped stacks -------------------------------------------------------------------------------------------

@pytest.mark.integration
@pytest.mark.parametrize("stack", STACKS)
def test_shipped_stack_survives_destroy_and_recreate(stack, preview, stack_config):
    assert check(ResourceGraph(preview(stack)), stack_config(stack)) == []


# -- seeded defects in a real preview -------------------------------------------------------------------------

@pytest.fixture
def dev(preview, stack_config):
    result = preview("dev")
    return result, stack_config("dev"), check(ResourceGraph(result), stack_config("dev"))


def test_alias_retained_with_its_key_is_found(dev):
    result, config, baseline = dev
    alias = named(result, ALIAS, "aip-dev-models-alias")
    broken = seeded(result, replace=[with_options(alias, retainOnDelete=True, deleteBeforeReplace=True)])
    assert set(check(ResourceGraph(broken), config)) - set(baseline) == {
        Finding("recreate", alias.urn, "Alias " + RETAINED.format(name="alias/aip-dev-models"))}


def test_fixed_name_without_delete_before_replace_is_found(dev):
    result, config, baseline = dev
    cluster = named(result, "aws:eks/cluster:Cluster", "aip-dev-cluster-eks")
    broken = seeded(result, replace=[with_options(cluster, deleteBeforeReplace=False)])
    assert set(check(ResourceGraph(broken), config)) - set(baseline) == {
        Finding("recreate", cluster.urn, "Cluster " + NO_DBR.format(name="aip-dev"))}


def test_retained_bucket_with_an_explicit_name_is_found(dev):
    result, config, baseline = dev
    bucket = next(r for r in result.resources if r.type == BUCKET and r.options["retainOnDelete"]
                  and not r.options["protect"])
    broken = seeded(result, replace=[with_options(with_inputs(bucket, bucket="aip-dev-models"),
                                                  deleteBeforeReplace=True)])
    assert set(check(ResourceGraph(broken), config)) - set(baseline) == {
        Finding("recreate", bucket.urn, "Bucket " + RETAINED.format(name="aip-dev-models"))}


def test_protected_retained_alias_is_fine(dev):
    result, config, baseline = dev
    alias = named(result, ALIAS, "aip-dev-models-alias")
    guarded = seeded(result, replace=[with_options(alias, protect=True, retainOnDelete=True,
                                                   deleteBeforeReplace=False)])
    assert set(check(ResourceGraph(guarded), config)) - set(baseline) == set()


@pytest.mark.integration
@pytest.mark.parametrize("type_token", [
    "aws:eks/accessPolicyAssociation:AccessPolicyAssociation", "aws:eks/accessEntry:AccessEntry",
    "aws:ec2/securityGroupRule:SecurityGroupRule"])
def test_replacing_an_identity_without_deleting_it_first_is_found(preview, type_token):
    # A new access scope, entry type or rule description replaces the resource under the same identity.
    record = next(r for r in preview("prod").resources if r.type == type_token)
    assert problems(record) == []
    [problem] = problems(with_options(record, deleteBeforeReplace=False))
    assert problem.startswith("has the fixed name") and "not deleteBeforeReplace" in problem
