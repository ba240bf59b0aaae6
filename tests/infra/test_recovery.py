"""Disaster recovery: the recovery config, replication of prod's data into its recovery region, and the recovery stack
prod-dr that serves from the replicas (with the team stacks that move onto it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.components.log_retention import REPOSITORY_FILE, RESTORE_REPOSITORY, RESTORE_REPOSITORY_FILE
from infra.components.replication import replication_rule
from infra.config import ConfigError, PlatformConfig, TeamConfig, parse_stack_config
from infra.config.recovery import RTC_MINUTES
from infra.graph_checks import run_deploy_checks
from infra.iam_policies import replication_role_policy, replication_trust_policy
from infra.preview import Project, run_preview
from infra.preview.policy_gate import evaluate
from infra.preview.render import plain
from infra.preview.runner import ProgramError
from infra.restore import replicas_of
from policies.registry import ALL_POLICIES, PACK_NAME
from tests.conftest import ROOT, policy_of
from tests.infra.test_config import platform, problems, team

REPLICATION = "aws:s3/bucketReplicationConfig:BucketReplicationConfig"
BUCKET = "aws:s3/bucket:Bucket"
RECOVERY_REGION = "us-west-2"
SOURCE, REPLICA = "arn:aws:s3:::aip-prod-model-store-models-1", "arn:aws:s3:::aip-prod-replication-models-replica-2"
SOURCE_KEY = "arn:aws:kms:us-east-1:123456789012:key/source"
REPLICA_KEY = "arn:aws:kms:us-west-2:123456789012:key/replica"


# -- config ----------------------------------------------------------------------------------------------------------

def recovery_problems(recovery: Any, stack: str = "prod", **overrides: Any) -> list[str]:
    return problems(platform(environment=stack.removesuffix("-dr"), recovery=recovery, **overrides), stack)


RECOVERY_ERRORS = [
    ("missing in prod", None, "prod",
     ["ai-platform:recovery = (not set): is required in prod: set region to the recovery region the model store and "
      "the log archive are replicated to (see docs/recovery.md)"]),
    ("same region as the stack", {"region": "us-east-1"}, "prod",
     ['ai-platform:recovery.region = "us-east-1": must differ from aws:region (us-east-1): a replica in the same '
      "region is lost with it"]),
    ("region not approved", {"region": "ap-south-1"}, "prod",
     ['ai-platform:recovery.region = "ap-south-1": is not an approved region; allowed: us-east-1, us-west-2, '
      "eu-west-1, eu-central-1"]),
    ("not a region", {"region": "west"}, "prod",
     ['ai-platform:recovery.region = "west": must be an AWS region name such as us-east-1']),
    ("RTC off in prod", {"region": RECOVERY_REGION, "replicationTimeControl": False}, "prod",
     ["ai-platform:recovery.replicationTimeControl = false: must be true in prod: the recovery point objective of "
      "docs/recovery.md (15 minutes) rests on it"]),
    ("replicates and restores", {"region": RECOVERY_REGION, "restoreFrom": "acme/ai-platform/prod"}, "prod-dr",
     ['ai-platform:recovery.restoreFrom = "acme/ai-platform/prod": a recovery stack replicates nothing (its data are '
      "the replicas of the stack it restores); set region or restoreFrom, not both"]),
    ("neither", {}, "prod",
     ["ai-platform:recovery = {}: needs region (replicate this stack's data there) or restoreFrom (this is the "
      "recovery stack of that platform stack)"]),
    ("RTC in a recovery stack", {"restoreFrom": "acme/ai-platform/prod", "replicationTimeControl": True}, "prod-dr",
     ["ai-platform:recovery.replicationTimeControl = true: is only used together with region"]),
    ("restoring another environment", {"restoreFrom": "acme/ai-platform/staging"}, "prod-dr",
     ['ai-platform:recovery.restoreFrom = "acme/ai-platform/staging": must name the platform stack of this stack\'s '
      "environment (.../prod), whose recovery stack this is"]),
    ("restoring another project", {"restoreFrom": "acme/other/prod"}, "prod-dr",
     ['ai-platform:recovery.restoreFrom = "acme/other/prod": must name a stack of this project '
      "(<org>/ai-platform/prod)"]),
    ("recovery stack without restoreFrom", {"region": RECOVERY_REGION}, "prod-dr",
     ["ai-platform:recovery.restoreFrom = (not set): required for the recovery stack 'prod-dr': the platform stack "
      "of 'prod' it restores (see docs/recovery.md)"]),
    ("the platform stack restoring", {"restoreFrom": "acme/ai-platform/prod"}, "prod",
     ["ai-platform:recovery.restoreFrom = \"acme/ai-platform/prod\": only the recovery stack 'prod-dr' restores "
      "another stack; 'prod' is the environment's platform stack"]),
]


@pytest.mark.parametrize(("recovery", "stack", "expected"), [c[1:] for c in RECOVERY_ERRORS],
                         ids=[c[0] for c in RECOVERY_ERRORS])
def test_recovery_config_errors_name_key_value_and_what_is_allowed(recovery, stack, expected):
    assert recovery_problems(recovery, stack) == expected


SEVERAL = [
    ("same region and RTC off in prod", {"region": "us-east-1", "replicationTimeControl": False}, "prod",
     ['ai-platform:recovery.region = "us-east-1": must differ from aws:region (us-east-1): a replica in the same '
      "region is lost with it",
      "ai-platform:recovery.replicationTimeControl = false: must be true in prod: the recovery point objective of "
      "docs/recovery.md (15 minutes) rests on it"]),
    ("unapproved region and RTC off in prod", {"region": "ap-south-1", "replicationTimeControl": False}, "prod",
     ['ai-platform:recovery.region = "ap-south-1": is not an approved region; allowed: us-east-1, us-west-2, '
      "eu-west-1, eu-central-1",
      "ai-platform:recovery.replicationTimeControl = false: must be true in prod: the recovery point objective of "
      "docs/recovery.md (15 minutes) rests on it"]),
    ("RTC in a recovery stack that restores another project", {"restoreFrom": "acme/other/prod",
                                                                 "replicationTimeControl": True}, "prod-dr",
     ["ai-platform:recovery.replicationTimeControl = true: is only used together with region",
      'ai-platform:recovery.restoreFrom = "acme/other/prod": must name a stack of this project '
      "(<org>/ai-platform/prod)"]),
    ("RTC and neither", {"replicationTimeControl": True}, "prod",
     ['ai-platform:recovery = {"replicationTimeControl": true}: needs region (replicate this stack\'s data there) '
      "or restoreFrom (this is the recovery stack of that platform stack)",
      "ai-platform:recovery.replicationTimeControl = true: is only used together with region"]),
]


@pytest.mark.parametrize(("recovery", "stack", "expected"), [c[1:] for c in SEVERAL], ids=[c[0] for c in SEVERAL])
def test_every_recovery_problem_is_reported_not_only_the_first(recovery, stack, expected):
    assert recovery_problems(recovery, stack) == expected


def test_a_recovery_stack_must_be_named_after_its_environment():
    values = platform(environment="prod", recovery={"restoreFrom": "acme/ai-platform/prod"})
    assert problems(values, "prod-west") == [
        "ai-platform:team = (not set): required for the team stack 'prod-west' (platform stacks are named after "
        "their environment: 'prod', or 'prod-dr' for its recovery stack)"]


def parse(values: dict[str, str], stack: str) -> PlatformConfig | TeamConfig:
    return parse_stack_config(values, project="ai-platform", stack=stack)


@pytest.mark.parametrize(("environment", "rtc"), [("dev", False), ("staging", False), ("prod", True)])
def test_replication_time_control_defaults_to_on_in_prod_only(environment, rtc):
    config = parse(platform(environment=environment, recovery={"region": RECOVERY_REGION}), environment)
    assert config.recovery.region == RECOVERY_REGION and config.recovery.replication_time_control is rtc


def test_recovery_is_optional_outside_prod():
    assert parse(platform(environment="staging"), "staging").recovery is None


def test_a_recovery_stack_restores_and_replicates_nothing():
    config = parse(platform(environment="prod", recovery={"restoreFrom": "acme/ai-platform/prod"},
                            **{"aws:region": RECOVERY_REGION}), "prod-dr")
    assert config.recovery.restores and not config.recovery.replicates


def test_a_team_may_name_its_environments_recovery_stack_and_nothing_else():
    config = parse(team(environment="prod", platformStack="acme/ai-platform/prod-dr"), "vision-prod")
    assert config.platform_stack == "acme/ai-platform/prod-dr"
    assert problems(team(environment="prod", platformStack="acme/ai-platform/dev-dr"), "vision-prod") == [
        'ai-platform:platformStack = "acme/ai-platform/dev-dr": must name the platform stack of the team\'s '
        "environment (.../prod) or its recovery stack (.../prod-dr)"]


# -- pure decisions --------------------------------------------------------------------------------------------------

def test_the_replication_rule_with_time_control_replicates_everything_encrypted_within_15_minutes():
    rule = replication_rule(replica_bucket_arn=REPLICA, replica_key_arn=REPLICA_KEY, replicate_deletes=False,
                            time_control=True)
    assert rule == {
        "id": "replicate-to-recovery-region", "status": "Enabled", "priority": 1, "filter": {},
        "delete_marker_replication": {"status": "Disabled"},
        "source_selection_criteria": {"sse_kms_encrypted_objects": {"status": "Enabled"}},
        "destination": {"bucket": REPLICA, "encryption_configuration": {"replica_kms_key_id": REPLICA_KEY},
                        "replication_time": {"status": "Enabled", "time": {"minutes": 15}},
                        "metrics": {"status": "Enabled", "event_threshold": {"minutes": 15}}}}


def test_the_replication_rule_without_time_control_is_best_effort_and_may_replicate_deletes():
    rule = replication_rule(replica_bucket_arn=REPLICA, replica_key_arn=REPLICA_KEY, replicate_deletes=True,
                            time_control=False)
    assert rule["delete_marker_replication"] == {"status": "Enabled"}
    assert set(rule["destination"]) == {"bucket", "encryption_configuration"}


def test_only_s3_replicating_the_one_source_bucket_of_this_account_may_assume_the_role():
    [statement] = replication_trust_policy("123456789012", SOURCE)["Statement"]
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"} and statement["Action"] == "sts:AssumeRole"
    assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"},
                                      "ArnLike": {"aws:SourceArn": SOURCE}}


def role_policy(replicate_deletes: bool) -> dict[str, dict[str, Any]]:
    policy = replication_role_policy(source_bucket_arn=SOURCE, source_key_arn=SOURCE_KEY, source_region="us-east-1",
                                     replica_bucket_arn=REPLICA, replica_key_arn=REPLICA_KEY,
                                     replica_region=RECOVERY_REGION, replicate_deletes=replicate_deletes)
    return {s["Sid"]: s for s in policy["Statement"]}


def test_the_replication_role_reads_the_source_and_writes_the_replica_only():
    statements = role_policy(replicate_deletes=False)
    assert statements["ReadReplicationConfiguration"]["Resource"] == SOURCE
    assert statements["ReadSourceVersions"]["Resource"] == f"{SOURCE}/*"
    assert statements["WriteReplicas"] == {"Sid": "WriteReplicas", "Effect": "Allow",
                                           "Action": ["s3:ReplicateObject", "s3:ReplicateTags"],
                                           "Resource": f"{REPLICA}/*"}
    assert "s3:ReplicateDelete" in role_policy(replicate_deletes=True)["WriteReplicas"]["Action"]
    actions = [a for s in statements.values() for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])]
    assert not [a for a in actions if a.endswith("*") or "Delete" in a or a == "s3:GetObject"]


def test_the_replication_role_uses_each_key_only_through_s3_in_its_region_for_its_bucket():
    statements = role_policy(replicate_deletes=False)
    decrypt, encrypt = statements["DecryptSourceThroughS3"], statements["EncryptReplicasThroughS3"]
    assert (decrypt["Action"], decrypt["Resource"]) == ("kms:Decrypt", SOURCE_KEY)
    assert decrypt["Condition"] == {"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"},
                                    "StringLike": {"kms:EncryptionContext:aws:s3:arn": [SOURCE, f"{SOURCE}/*"]}}
    assert (encrypt["Action"], encrypt["Resource"]) == (["kms:Encrypt", "kms:GenerateDataKey"], REPLICA_KEY)
    assert encrypt["Condition"] == {"StringEquals": {"kms:ViaService": "s3.us-west-2.amazonaws.com"},
                                    "StringLike": {"kms:EncryptionContext:aws:s3:arn": [REPLICA, f"{REPLICA}/*"]}}


def recovery_stack_config(region: str = RECOVERY_REGION) -> PlatformConfig:
    return parse(platform(environment="prod", recovery={"restoreFrom": "acme/ai-platform/prod"},
                          **{"aws:region": region}), "prod-dr")


def test_a_recovery_stack_refuses_a_source_that_replicates_nothing_or_elsewhere():
    with pytest.raises(ConfigError) as caught:
        replicas_of({}, recovery_stack_config())
    assert [p.render() for p in caught.value.problems] == [
        'ai-platform:recovery.restoreFrom = "acme/ai-platform/prod": acme/ai-platform/prod replicates no models and '
        "no log-archive bucket: set its ai-platform:recovery.region and deploy it first"]
    replica = {"bucket": "b", "bucketArn": "arn:aws:s3:::b", "logBucket": "l", "kmsKeyArn": REPLICA_KEY}
    recovery = {"region": RECOVERY_REGION, "replicas": {"models": replica, "log-archive": replica}}
    assert replicas_of(recovery, recovery_stack_config())["models"] == replica
    with pytest.raises(ConfigError) as caught:
        replicas_of(recovery, recovery_stack_config("eu-west-1"))
    assert [p.render() for p in caught.value.problems] == [
        'aws:region = "eu-west-1": must be the recovery region of acme/ai-platform/prod (us-west-2), where its '
        "replicas are"]


# -- prod replicates, dev and staging do not ------------------------------------------------------------------------

def replications(result) -> dict[str, Any]:
    """The replication configurations of a preview, by the purpose of the bucket they replicate."""
    return {r.name.removeprefix("aip-prod-replication-").removesuffix("-replication"): r
            for r in result.of_type(REPLICATION)}


def test_prod_replicates_the_model_store_and_the_log_archive_with_rtc_into_its_recovery_region(preview):
    result = preview("prod")
    outputs = plain(result.outputs)
    found = replications(result)
    assert set(found) == {"models", "log-archive"}
    sources = {"models": outputs["modelStoreBucket"],
               "log-archive": next(b.output_struct["bucket"] for b in result.of_type(BUCKET)
                                   if b.name == "aip-prod-log-archive-snapshots")}
    replicas = outputs["recovery"]["replicas"]
    assert outputs["recovery"]["region"] == RECOVERY_REGION and outputs["recovery"]["replicationTimeControl"] is True
    for purpose, config in found.items():
        assert config.inputs["bucket"] == sources[purpose]
        [rule] = config.inputs["rules"]
        destination = rule["destination"]
        assert destination["bucket"] == replicas[purpose]["bucketArn"]
        assert destination["encryptionConfiguration"]["replicaKmsKeyId"] == replicas[purpose]["kmsKeyArn"]
        assert replicas[purpose]["kmsKeyArn"].startswith(f"arn:aws:kms:{RECOVERY_REGION}:")
        assert destination["replicationTime"] == {"status": "Enabled", "time": {"minutes": RTC_MINUTES}}
        assert destination["metrics"]["status"] == "Enabled"
        assert rule["sourceSelectionCriteria"] == {"sseKmsEncryptedObjects": {"status": "Enabled"}}
    # Deleted models stay in the replica; Elasticsearch's deletions of expired snapshot files reach it.
    assert found["models"].inputs["rules"][0]["deleteMarkerReplication"] == {"status": "Disabled"}
    assert found["log-archive"].inputs["rules"][0]["deleteMarkerReplication"] == {"status": "Enabled"}


def test_replication_waits_for_versioning_on_both_sides_and_for_its_role(preview):
    for config in replications(preview("prod")).values():
        depends = config.options["dependsOn"]
        versionings = [d for d in depends if "aws:s3/bucketVersioning:BucketVersioning::" in d]
        assert len(versionings) == 2 and any("Replication$" in d for d in versionings)
        assert any("aws:iam/rolePolicy:RolePolicy::" in d for d in depends)


def test_every_replica_resource_lives_in_the_recovery_region_and_is_protected_like_its_source(preview):
    result = preview("prod")
    owned = [r for r in result.resources if r.custom and r.name.startswith("aip-prod-replication-")
             and r.type.startswith(("aws:s3/", "aws:kms/")) and r.type != REPLICATION]
    assert {r.type for r in owned} >= {BUCKET, "aws:kms/key:Key", "aws:kms/alias:Alias",
                                       "aws:s3/bucketPolicy:BucketPolicy", "aws:s3/bucketVersioning:BucketVersioning"}
    for record in owned:
        assert record.inputs.get("region") == RECOVERY_REGION, record.urn
    for bucket in (r for r in owned if r.type == BUCKET):
        assert bucket.options["protect"] and bucket.options["retainOnDelete"], bucket.urn
    keys = [r for r in owned if r.type == "aws:kms/key:Key"]
    assert len(keys) == 2 and all(k.inputs["enableKeyRotation"] and k.options["protect"] for k in keys)


def test_each_replication_role_is_trusted_by_s3_for_its_source_alone(preview):
    result = preview("prod")
    for config in replications(result).values():
        role = next(r for r in result.of_type("aws:iam/role:Role") if r.output_struct["arn"] == config.inputs["role"])
        [statement] = policy_of(role, "assumeRolePolicy")["Statement"]
        source = f"arn:aws:s3:::{config.inputs['bucket']}"
        assert statement["Condition"]["ArnLike"] == {"aws:SourceArn": source}
        grants = next(r for r in result.of_type("aws:iam/rolePolicy:RolePolicy") if r.name == role.name)
        reads = {s["Sid"]: s for s in policy_of(grants)["Statement"]}["ReadSourceVersions"]
        assert reads["Resource"] == f"{source}/*"


@pytest.mark.parametrize("stack", ["dev", "staging"])
def test_dev_and_staging_without_recovery_config_replicate_nothing(preview, stack):
    result = preview(stack)
    assert result.of_type(REPLICATION) == []
    assert not [r for r in result.resources if "ai-platform:storage:Replication" in r.urn]
    assert plain(result.outputs)["recovery"] == {}


# -- the recovery stack ----------------------------------------------------------------------------------------------

def test_prod_dr_serves_from_prods_replicas_and_creates_no_bucket_and_no_replication(preview):
    result = preview("prod-dr")
    outputs, replicas = plain(result.outputs), plain(preview("prod").outputs)["recovery"]["replicas"]
    assert outputs["region"] == RECOVERY_REGION and outputs["clusterName"] == "aip-prod-dr"
    assert outputs["recovery"] == {"restoredFrom": "acme/ai-platform/prod"}
    assert outputs["modelStoreBucket"] == replicas["models"]["bucket"]
    assert outputs["modelStoreBucketArn"] == replicas["models"]["bucketArn"]
    assert outputs["modelStoreKmsKeyArn"] == replicas["models"]["kmsKeyArn"]
    assert result.of_type(BUCKET) == [] and result.of_type(REPLICATION) == []
    # Its own keys (secrets, volumes, logs, Karpenter's queue), none for data it does not own.
    assert not [k for k in result.of_type("aws:kms/key:Key") if "models" in k.name or "archive" in k.name]
    boundary = next(r for r in result.of_type("aws:iam/policy:Policy") if r.name.endswith("team-boundary"))
    assert replicas["models"]["kmsKeyArn"] in boundary.inputs["policy"]


def test_prod_dr_restores_logs_from_the_replicated_snapshots_read_only_and_snapshots_beside_them(preview):
    result = preview("prod-dr")
    archive = plain(preview("prod").outputs)["recovery"]["replicas"]["log-archive"]
    [bodies] = [r for r in result.of_type("kubernetes:core/v1:ConfigMap") if "setup-bodies" in r.name]
    own, restore = (json.loads(bodies.inputs["data"][f]) for f in (REPOSITORY_FILE, RESTORE_REPOSITORY_FILE))
    assert own == {"type": "s3", "settings": {"bucket": archive["bucket"], "base_path": "snapshots-prod-dr"}}
    assert restore == {"type": "s3", "settings": {"bucket": archive["bucket"], "base_path": "snapshots",
                                                  "readonly": True}}
    [job] = [r for r in result.of_type("kubernetes:batch/v1:Job") if r.name.endswith("-setup")]
    assert f"_snapshot/{RESTORE_REPOSITORY}" in job.inputs["spec"]["template"]["spec"]["containers"][0]["command"][2]
    # Elasticsearch reads the whole replica but writes only its own snapshots.
    grants = next(r for r in result.of_type("aws:iam/rolePolicy:RolePolicy") if r.name.endswith("-elasticsearch"))
    statements = {s["Sid"]: s for s in policy_of(grants)["Statement"]}
    assert statements["ReadSnapshots"] == {"Sid": "ReadSnapshots", "Effect": "Allow", "Action": "s3:GetObject",
                                           "Resource": f"{archive['bucketArn']}/*"}
    assert statements["WriteOwnSnapshots"]["Resource"] == f"{archive['bucketArn']}/snapshots-prod-dr/*"


def test_prod_dr_passes_the_prod_policy_gate_and_the_deploy_checks(preview, project):
    """What `aip preview --stack prod-dr` runs after the preview (tests/test_policy_gate.py runs the CLI itself)."""
    result = preview("prod-dr")
    config = json.loads((ROOT / "policies" / "config" / "prod.json").read_text())
    report = evaluate(result, ALL_POLICIES, pack=PACK_NAME, config=config)
    assert [v.message for v in report.violations] == []
    values = project.stack_config("prod-dr")
    parsed = parse_stack_config(values.values, project=project.name, stack="prod-dr",
                                secret_keys=values.secret_keys, secure_paths=values.secure_paths)
    assert [f.render() for f in run_deploy_checks(result, parsed)] == []


def moved_to(scratch: Path, stack: str, *, platform_stack: str, region: str) -> Project:
    """The scratch project with ``stack`` pointed at another platform stack and region, as a failover does."""
    path = scratch / "stacks" / f"Pulumi.{stack}.yaml"
    data = yaml.safe_load(path.read_text())
    data["config"].update({"ai-platform:platformStack": platform_stack, "aws:region": region})
    path.write_text(yaml.safe_dump(data))
    return Project.load(scratch)


@pytest.mark.integration
@pytest.mark.parametrize(("stack", "pool"), [("vision-prod", "inference-l40s"), ("search-prod", "search-h100")])
def test_a_team_stack_moved_to_prod_dr_resolves_its_onboarding_pools_and_the_replica(
        scratch_project, packaged_models, preview, stack, pool):
    project = moved_to(scratch_project, stack, platform_stack="acme/ai-platform/prod-dr", region=RECOVERY_REGION)
    cache: dict[str, Any] = {}
    result = run_preview(stack, project, cache=cache)
    assert result.warnings == []
    team_name = stack.split("-")[0]
    recovery, replicas = plain(cache["prod-dr"].outputs), plain(preview("prod").outputs)["recovery"]["replicas"]
    outputs = plain(result.outputs)
    assert outputs["clusterName"] == "aip-prod-dr"
    assert outputs["servingRoleArn"] == recovery["teams"][team_name]["servingRoleArn"]
    assert outputs["modelPrefix"] == f"s3://{replicas['models']['bucket']}/teams/{team_name}/"
    uploads = result.of_type("aws:s3/bucketObjectv2:BucketObjectv2")
    assert uploads and {(u.inputs["bucket"], u.inputs["kmsKeyId"]) for u in uploads} == {
        (replicas["models"]["bucket"], replicas["models"]["kmsKeyArn"])}
    [isvc] = result.of_type("kubernetes:serving.kserve.io/v1beta1:InferenceService")
    assert isvc.inputs["spec"]["predictor"]["nodeSelector"]["ai-platform.io/gpu-pool"] == pool
    # The team's CI may deploy all of it on the recovery cluster, as on prod's.
    values = project.stack_config(stack)
    parsed = parse_stack_config(values.values, project=project.name, stack=stack, secret_keys=values.secret_keys,
                                secure_paths=values.secure_paths)
    assert [f.render() for f in run_deploy_checks(result, parsed, platform=cache["prod-dr"])] == []


@pytest.mark.integration
def test_a_team_stack_moved_to_prod_dr_without_its_region_is_a_config_error(scratch_project, packaged_models):
    project = moved_to(scratch_project, "vision-prod", platform_stack="acme/ai-platform/prod-dr", region="us-east-1")
    with pytest.raises(ProgramError) as caught:
        run_preview("vision-prod", project)
    assert isinstance(caught.value.cause, ConfigError)
    assert [p.render() for p in caught.value.cause.problems] == [
        'aws:region = "us-east-1": differs from the region of acme/ai-platform/prod-dr (us-west-2), whose model store '
        "the team's models upload to: set aws:region to us-west-2"]
