"""Identity: who runs each stack can do exactly what it creates; proven on the shipped stacks and seeded defects."""

from __future__ import annotations

import dataclasses
import json

import pytest

from infra.graph_checks.identity import allows, check_identity, iam_allows, resource_of
from tests.graph_checks.conftest import PLATFORM_STACKS, TEAM_STACKS, renamed, seeded, with_inputs

ISVC = "kubernetes:serving.kserve.io/v1beta1:InferenceService"
ROLE = "kubernetes:rbac.authorization.k8s.io/v1:Role"


def test_resource_names_are_rbac_plurals():
    assert [resource_of(k) for k in ("PodMonitor", "InferenceService", "NetworkPolicy", "Ingress")] == [
        "podmonitors", "inferenceservices", "networkpolicies", "ingresses"]


def test_rbac_rules_grant_only_what_they_name():
    rules = [{"apiGroups": ["serving.kserve.io"], "resources": ["inferenceservices"], "verbs": ["create", "patch"]},
             {"apiGroups": [""], "resources": ["secrets"], "verbs": ["*"], "resourceNames": ["one"]}]
    assert allows(rules, "serving.kserve.io", "inferenceservices", "patch")
    assert not allows(rules, "serving.kserve.io", "inferenceservices", "delete")
    assert not allows(rules, "", "secrets", "create")


def test_iam_policies_are_read_with_wildcards_and_deny_wins():
    policy = {"Statement": [{"Effect": "Allow", "Action": "s3:Put*", "Resource": "arn:aws:s3:::b/teams/v/*"},
                            {"Effect": "Deny", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::b/teams/v/x"}]}
    assert iam_allows(policy, "s3:PutObjectTagging", "arn:aws:s3:::b/teams/v/m/1")
    assert not iam_allows(policy, "s3:PutObject", "arn:aws:s3:::b/teams/v/x")
    assert not iam_allows(policy, "s3:PutObject", "arn:aws:s3:::b/teams/s/m")


@pytest.mark.integration
@pytest.mark.parametrize("stack", PLATFORM_STACKS)
def test_platform_stacks_admit_every_principal_they_name(preview, stack_config, stack):
    assert check_identity(preview(stack), stack_config(stack)) == []


@pytest.mark.integration
@pytest.mark.parametrize("stack", TEAM_STACKS)
def test_team_ci_may_do_exactly_what_its_stack_creates(preview, stack_config, stack):
    platform = stack.split("-")[1]
    assert check_identity(preview(stack), stack_config(stack), preview(platform)) == []


def _isvc(result):
    return next(r for r in result.resources if r.type == ISVC)


@pytest.mark.integration
def test_an_object_outside_the_team_namespace_is_caught(preview, stack_config):
    team = preview("vision-dev")
    isvc = _isvc(team)
    moved = with_inputs(renamed(isvc, "elsewhere"), metadata={**isvc.inputs["metadata"], "namespace": "search"})
    found = check_identity(seeded(team, add=[moved]), stack_config("vision-dev"), preview("dev"))
    assert [f.message for f in found] == ["InferenceService digits lies outside the team's namespace (search); the "
                                          "team's CI may only deploy into vision"]


@pytest.mark.integration
def test_a_kind_the_team_role_does_not_grant_is_caught(preview, stack_config):
    team = preview("vision-dev")
    isvc = _isvc(team)
    policy = dataclasses.replace(
        renamed(isvc, "open-egress"), type="kubernetes:networking.k8s.io/v1:NetworkPolicy",
        inputs={"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": {"name": "open-egress", "namespace": "vision"}, "spec": {}})
    found = check_identity(seeded(team, add=[policy]), stack_config("vision-dev"), preview("dev"))
    assert [f.message for f in found] == [
        "the team's CI may not create/patch networking.k8s.io/networkpolicies in vision: add it to the team's Role "
        "(infra/components/team_workspace.py TEAM_STACK_RESOURCES)"]


@pytest.mark.integration
def test_an_upload_outside_the_team_prefix_is_caught(preview, stack_config):
    team = preview("vision-dev")
    upload = next(r for r in team.resources if r.type == "aws:s3/bucketObjectv2:BucketObjectv2")
    stray = with_inputs(renamed(upload, "stray"), key="teams/search/models/x")
    found = check_identity(seeded(team, add=[stray]), stack_config("vision-dev"), preview("dev"))
    assert len(found) == 1 and found[0].message.startswith("team vision's deploy policy denies s3:PutObject, "
                                                           "s3:PutObjectTagging, s3:GetObject, s3:GetObjectTagging "
                                                           "for s3://")


@pytest.mark.integration
@pytest.mark.parametrize(("sid", "denied"), [
    ("EncryptThroughS3", "kms:GenerateDataKey"), ("DescribeS3DefaultKey", "kms:DescribeKey"),
    ("WriteTeamModels", "s3:PutObject, s3:PutObjectTagging, s3:GetObject, s3:GetObjectTagging")])
def test_a_deploy_policy_missing_what_uploads_and_refreshes_need_is_caught(preview, stack_config, sid, denied):
    platform = preview("dev")
    policy = next(r for r in platform.resources if r.type == "aws:iam/policy:Policy" and r.name.endswith("-deploy"))
    document = json.loads(policy.inputs["policy"])
    document["Statement"] = [s for s in document["Statement"] if s["Sid"] != sid]
    narrower = seeded(platform, replace=[with_inputs(policy, policy=json.dumps(document))])
    found = check_identity(preview("vision-dev"), stack_config("vision-dev"), narrower)
    assert found and {f.message.split(" denies ")[1].split(" for ")[0] for f in found} == {denied}


@pytest.mark.integration
def test_an_aws_resource_the_team_may_not_create_is_caught(preview, stack_config):
    team = preview("vision-dev")
    upload = next(r for r in team.resources if r.type == "aws:s3/bucketObjectv2:BucketObjectv2")
    role = dataclasses.replace(renamed(upload, "own-role"), type="aws:iam/role:Role", inputs={})
    found = check_identity(seeded(team, add=[role]), stack_config("vision-dev"), preview("dev"))
    assert [f.message for f in found] == ["the team's CI has no IAM right to create aws:iam/role:Role; team stacks "
                                          "upload models only"]


@pytest.mark.integration
def test_a_team_without_an_access_entry_is_caught(preview, stack_config):
    platform = preview("dev")
    entry = next(r for r in platform.resources if r.type == "aws:eks/accessEntry:AccessEntry"
                 and r.inputs["principalArn"] == stack_config("dev").teams[0].ci_principal_arn)
    without = seeded(platform, drop=[entry.urn])
    found = check_identity(preview("vision-dev"), stack_config("vision-dev"), without)
    assert found and found[0].message == ("team vision's CI principal has no access entry on the platform's cluster: "
                                          "every Kubernetes call of its stack would get 401")
    assert check_identity(without, stack_config("dev"))


@pytest.mark.integration
def test_a_team_role_that_may_rewrite_its_guardrails_is_caught(preview, stack_config):
    platform = preview("dev")
    role = next(r for r in platform.resources if r.type == ROLE)
    wider = with_inputs(role, rules=[*role.inputs["rules"], {"apiGroups": [""], "resources": ["resourcequotas"],
                                                             "verbs": ["patch"]}])
    found = check_identity(seeded(platform, replace=[wider]), stack_config("dev"))
    assert [f.message for f in found] == ["team vision's CI may patch resourcequotas: a team could rewrite the "
                                          "guardrails the platform sets"]


@pytest.mark.integration
def test_a_team_the_platform_did_not_onboard_is_caught(preview, stack_config):
    platform = preview("dev")
    outputs = {**platform.outputs, "teams": {}}
    found = check_identity(preview("vision-dev"), stack_config("vision-dev"),
                           dataclasses.replace(platform, outputs=outputs))
    assert [f.message for f in found] == ["team vision is not onboarded on dev: its CI has no access to the cluster"]


def test_shipped_prod_admits_an_operator_role(preview, stack_config):
    config = stack_config("prod")
    assert config.cluster.access_entries, "prod should show how operators are admitted"
    associations = preview("prod").of_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
    assert {json.dumps(a.inputs["accessScope"], sort_keys=True) for a in associations}
