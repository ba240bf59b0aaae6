"""aws-s3-bucket-replication: a compliant replicated model store, one mutation per violation, and the shipped stacks."""

from __future__ import annotations

from typing import Any

import pytest
from pulumi_policy import PolicyResource

from policies.aws.s3 import buckets as s3
from policies.aws.s3.bucket_replication import REPLICATION, aws_s3_bucket_replication, owner
from tests.policies.support import DELETE, engine_props, mutate, options, validate_stack
from tests.policies.test_shipped_stacks import policy_config, violations

MODELS, LOGS, REPLICA = "models-4dc85da", "access-logs-beff634", "models-replica-a289656"
REPLICA_KEY = "arn:aws:kms:us-west-2:123456789012:key/replica"
STORE, COPIES = "ai-platform:storage:ModelStore", "ai-platform:storage:Replication"
PROD = {"requireReplication": True, "requireReplicationTimeControl": True}
DEV = {"requireReplication": False, "requireReplicationTimeControl": False}


def urn(owner_type: str, resource_type: str, name: str) -> str:
    return f"urn:pulumi:prod::ai-platform::{owner_type}${resource_type}::{name}"


def rule() -> dict[str, Any]:
    return {"id": "replicate-to-recovery-region", "status": "Enabled", "priority": 1, "filter": {},
            "deleteMarkerReplication": {"status": "Disabled"},
            "sourceSelectionCriteria": {"sseKmsEncryptedObjects": {"status": "Enabled"}},
            "destination": {"bucket": f"arn:aws:s3:::{REPLICA}",
                            "encryptionConfiguration": {"replicaKmsKeyId": REPLICA_KEY},
                            "replicationTime": {"status": "Enabled", "time": {"minutes": 15}},
                            "metrics": {"status": "Enabled", "eventThreshold": {"minutes": 15}}}}


def stack(**mutations: Any) -> list[PolicyResource]:
    """The model store's bucket and its access-log bucket, the replica, and the replication (outputs).

    Keyword ``rule__<path>`` mutates the replication rule; ``replica_region`` and ``drop`` change the rest.
    """
    replicated = rule()
    for path, value in mutations.items():
        if path.startswith("rule__"):
            replicated = mutate(replicated, path.removeprefix("rule__").replace("__", "."), value)
    resources = [
        (STORE, s3.BUCKET, "models", {"bucket": MODELS, "id": MODELS, "arn": f"arn:aws:s3:::{MODELS}",
                                      "region": "us-east-1"}),
        (STORE, s3.BUCKET, "logs", {"bucket": LOGS, "id": LOGS, "arn": f"arn:aws:s3:::{LOGS}", "region": "us-east-1"}),
        (STORE, s3.LOGGING, "models", {"bucket": MODELS, "targetBucket": LOGS, "targetPrefix": "models/"}),
        (COPIES, s3.BUCKET, "replica", {"bucket": REPLICA, "id": REPLICA, "arn": f"arn:aws:s3:::{REPLICA}",
                                        "region": mutations.get("replica_region", "us-west-2")}),
        (COPIES, REPLICATION, "models", {"bucket": MODELS, "role": "arn:aws:iam::123456789012:role/r",
                                         "rules": [replicated]}),
    ]
    return [PolicyResource(t, engine_props(props), urn(o, t, name), name, options(), None, None, [], {})
            for o, t, name, props in resources if (t, name) not in mutations.get("drop", ())]


def run(resources: list[PolicyResource], config: dict[str, Any] | None = None) -> list[str]:
    return validate_stack(aws_s3_bucket_replication, resources, PROD if config is None else config)


def test_a_replicated_model_store_passes():
    assert run(stack()) == []


def test_the_owner_is_read_from_the_urn():
    assert owner(urn(STORE, s3.BUCKET, "x")) == "model store"
    assert owner(urn("ai-platform:observability:LogArchive", s3.BUCKET, "x")) == "log archive"
    assert owner(urn(COPIES, s3.BUCKET, "x")) is None


PREFIX = "S3 bucket 'models' (model store) replication "
MUTATIONS = [
    ("no replication", {"drop": [(REPLICATION, "models")]},
     ["S3 bucket 'models' (model store) is not replicated to another region: a regional outage would take its data "
      "with it."]),
    ("rule disabled", {"rule__status": "Disabled"},
     ["S3 bucket 'models' (model store) is not replicated to another region: a regional outage would take its data "
      "with it."]),
    ("replica in the same region", {"replica_region": "us-east-1"},
     [PREFIX + "targets a bucket in us-east-1, not in another region than the source's (us-east-1)."]),
    ("replica outside the stack", {"rule__destination__bucket": "arn:aws:s3:::elsewhere"},
     [PREFIX + "targets arn:aws:s3:::elsewhere, which is not a bucket of this stack: its region is unknown."]),
    ("SSE-KMS objects left out", {"rule__sourceSelectionCriteria": DELETE},
     [PREFIX + "leaves SSE-KMS objects out (sourceSelectionCriteria.sseKmsEncryptedObjects is not Enabled)."]),
    ("replicas without a customer key", {"rule__destination__encryptionConfiguration": DELETE},
     [PREFIX + "does not encrypt the replicas with a customer key (destination.encryptionConfiguration."
               "replicaKmsKeyId)."]),
    ("a prefix only", {"rule__filter__prefix": "teams/"},
     [PREFIX + "replicates only part of the bucket (a prefix or tag filter)."]),
    ("no time control", {"rule__destination__replicationTime__status": "Disabled"},
     [PREFIX + "does not use S3 Replication Time Control with its metrics (destination.replicationTime and "
               "destination.metrics Enabled)."]),
    ("time control without metrics", {"rule__destination__metrics": DELETE},
     [PREFIX + "does not use S3 Replication Time Control with its metrics (destination.replicationTime and "
               "destination.metrics Enabled)."]),
    ("several shortcomings", {"rule__sourceSelectionCriteria": DELETE, "replica_region": "us-east-1"},
     [PREFIX + "leaves SSE-KMS objects out (sourceSelectionCriteria.sseKmsEncryptedObjects is not Enabled); targets "
               "a bucket in us-east-1, not in another region than the source's (us-east-1)."]),
]


@pytest.mark.parametrize(("mutations", "expected"), [m[1:] for m in MUTATIONS], ids=[m[0] for m in MUTATIONS])
def test_each_shortcoming_is_reported_on_the_source_bucket(mutations, expected):
    assert run(stack(**mutations)) == expected


def test_outside_prod_an_unreplicated_bucket_passes_but_a_replication_is_still_judged():
    assert run(stack(drop=[(REPLICATION, "models")]), DEV) == []
    assert run(stack(rule__destination__replicationTime=DELETE), DEV) == []
    assert run(stack(replica_region="us-east-1"), DEV) == [
        PREFIX + "targets a bucket in us-east-1, not in another region than the source's (us-east-1)."]


def test_access_log_buckets_and_replicas_need_no_replication_of_their_own():
    # Only the model store's data bucket is reported: its access-log bucket and the replica are not judged.
    assert len(run(stack(drop=[(REPLICATION, "models")]))) == 1


def test_one_good_rule_among_bad_ones_is_enough():
    resources = stack()
    bad = mutate(rule(), "destination.bucket", "arn:aws:s3:::elsewhere")
    config = next(r for r in resources if r.resource_type == REPLICATION)
    resources[resources.index(config)] = PolicyResource(
        REPLICATION, engine_props({**config.props, "rules": [bad, rule()]}), config.urn, config.name, options(), None,
        None, [], {})
    assert run(resources) == []


@pytest.mark.integration
@pytest.mark.parametrize("shipped", ["prod", "prod-dr", "dev", "staging"])
def test_shipped_platform_stacks_pass_at_their_environments_settings(preview, shipped):
    assert "aws-s3-bucket-replication" not in violations(preview(shipped), shipped)


@pytest.mark.integration
def test_the_prod_preview_fails_when_its_replication_goes(preview):
    result = preview("prod")
    without = [r for r in result.resources if r.type != REPLICATION]
    config = policy_config("prod", "aws-s3-bucket-replication")
    assert config == PROD
    found = violations(type(result)(result.project, result.stack, without, result.outputs), "prod")
    assert sorted(m.split("'")[1] for m in found["aws-s3-bucket-replication"]) == [
        "aip-prod-log-archive-snapshots", "aip-prod-model-store-models"]
