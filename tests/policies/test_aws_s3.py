"""S3 policies: a compliant model store (models bucket + access-log bucket) and one mutation per violation."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest
from pulumi_policy import PolicyCustomTimeouts, PolicyResourceOptions, ResourceValidationArgs

from policies.aws.s3 import buckets as s3
from policies.aws.s3.bucket_access_logging import aws_s3_bucket_access_logging
from policies.aws.s3.bucket_deletion_protection import aws_s3_bucket_deletion_protection, config_key
from policies.aws.s3.bucket_object_torchserve_config import OBJECT, aws_s3_bucketobject_torchserve_config
from policies.aws.s3.bucket_public_access_block import aws_s3_bucket_public_access_block
from policies.aws.s3.bucket_sse_kms import aws_s3_bucket_sse_kms
from policies.aws.s3.bucket_tls_only import aws_s3_bucket_tls_only
from policies.aws.s3.bucket_versioning import aws_s3_bucket_versioning
from tests.policies.support import (
    DELETE,
    engine_props,
    mutate,
    resource,
    urn_of,
    validate_resource,
    validate_stack,
)

MODELS, LOGS = "models-4dc85da", "access-logs-beff634"
KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/08aa3a48"


def tls_policy(bucket: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]})


def model_store() -> dict[tuple[str, str], dict[str, Any]]:
    """(type, name) -> outputs, as stack policies see them."""
    store: dict[tuple[str, str], dict[str, Any]] = {}
    for name, bucket, algorithm in (("models", MODELS, "aws:kms"), ("logs", LOGS, "AES256")):
        store[(s3.BUCKET, name)] = {"bucket": bucket, "id": bucket, "tags": {}}
        store[(s3.SSE, name)] = {"bucket": bucket, "rules": [{"applyServerSideEncryptionByDefault": {
            "sseAlgorithm": algorithm, **({"kmsMasterKeyId": KEY_ARN} if algorithm == "aws:kms" else {})},
            "bucketKeyEnabled": True}]}
        store[(s3.PUBLIC_ACCESS_BLOCK, name)] = {"bucket": bucket, "blockPublicAcls": True, "blockPublicPolicy": True,
                                                 "ignorePublicAcls": True, "restrictPublicBuckets": True}
        store[(s3.VERSIONING, name)] = {"bucket": bucket, "versioningConfiguration": {"status": "Enabled"}}
        store[(s3.POLICY, name)] = {"bucket": bucket, "policy": tls_policy(bucket)}
    store[(s3.LOGGING, "models")] = {"bucket": MODELS, "targetBucket": LOGS, "targetPrefix": "models/"}
    return store


def run(policy, store) -> list[str]:
    return validate_stack(policy, [resource(t, n, props) for (t, n), props in store.items() if props is not None])


def changed(key: tuple[str, str], path: str, value: Any) -> dict:
    store = model_store()
    store[key] = DELETE if path == "" else mutate(store[key], path, value)
    return {k: v for k, v in store.items() if v is not DELETE}


ALL = [aws_s3_bucket_sse_kms, aws_s3_bucket_public_access_block, aws_s3_bucket_versioning, aws_s3_bucket_tls_only,
       aws_s3_bucket_access_logging]


@pytest.mark.parametrize("policy", ALL, ids=lambda p: p.name)
def test_compliant_model_store_passes(policy) -> None:
    assert run(policy, model_store()) == []


@pytest.mark.parametrize(("policy", "store", "message"), [
    (aws_s3_bucket_sse_kms, changed((s3.SSE, "models"), "", None),
     "S3 bucket 'models' has no BucketServerSideEncryptionConfiguration."),
    (aws_s3_bucket_sse_kms, changed((s3.SSE, "models"), "rules.0.applyServerSideEncryptionByDefault.sseAlgorithm",
                                    "AES256"),
     "S3 bucket 'models' is encrypted with 'AES256'; allowed: aws:kms, aws:kms:dsse."),
    # A bucket that is no longer a log target loses its AES256 allowance.
    (aws_s3_bucket_sse_kms, changed((s3.LOGGING, "models"), "targetBucket", "elsewhere"),
     "S3 bucket 'logs' is encrypted with 'AES256'; allowed: aws:kms, aws:kms:dsse."),
    (aws_s3_bucket_public_access_block, changed((s3.PUBLIC_ACCESS_BLOCK, "models"), "", None),
     "S3 bucket 'models' has no BucketPublicAccessBlock."),
    (aws_s3_bucket_public_access_block, changed((s3.PUBLIC_ACCESS_BLOCK, "logs"), "restrictPublicBuckets", False),
     "S3 bucket 'logs' public access block does not set restrictPublicBuckets to true."),
    (aws_s3_bucket_public_access_block, changed((s3.PUBLIC_ACCESS_BLOCK, "models"), "blockPublicAcls", DELETE),
     "S3 bucket 'models' public access block does not set blockPublicAcls to true."),
    (aws_s3_bucket_versioning, changed((s3.VERSIONING, "models"), "", None),
     "S3 bucket 'models' has no BucketVersioning."),
    (aws_s3_bucket_versioning, changed((s3.VERSIONING, "models"), "versioningConfiguration.status", "Suspended"),
     "S3 bucket 'models' versioning status is 'Suspended', not 'Enabled'."),
    (aws_s3_bucket_tls_only, changed((s3.POLICY, "models"), "", None),
     "S3 bucket 'models' has no bucket policy that denies requests where aws:SecureTransport is false."),
    (aws_s3_bucket_tls_only, changed((s3.POLICY, "logs"), "policy", tls_policy(LOGS).replace("Deny", "Allow")),
     "S3 bucket 'logs' has no bucket policy that denies requests where aws:SecureTransport is false."),
    (aws_s3_bucket_access_logging, changed((s3.LOGGING, "models"), "targetBucket", MODELS),
     "S3 bucket 'logs' has no BucketLogging (server access logging)."),
], ids=lambda v: v if isinstance(v, str) else None)
def test_each_violation_is_reported(policy, store, message) -> None:
    assert run(policy, store) == [message]


def test_without_logging_neither_bucket_is_a_log_target() -> None:
    store = changed((s3.LOGGING, "models"), "", None)
    assert run(aws_s3_bucket_access_logging, store) == [
        "S3 bucket 'models' has no BucketLogging (server access logging).",
        "S3 bucket 'logs' has no BucketLogging (server access logging).",
    ]


def test_settings_match_a_bucket_by_id_as_well_as_by_name() -> None:
    store = model_store()
    store[(s3.BUCKET, "models")] = {"id": MODELS}
    assert run(aws_s3_bucket_sse_kms, store) == []


# --- TorchServe config.properties uploaded to the model store -------------------------------------------

SAFE_CONFIG = ("inference_address=http://127.0.0.1:8085\nenable_model_api=false\n"
               "allowed_urls=file:///mnt/models/model-store/[^/]+[.]mar\n")


def config_object(tmp_path: Path, text: str) -> dict[str, Any]:
    path = tmp_path / "config.properties"
    path.write_text(text)
    return {"bucket": MODELS, "key": "teams/vision/models/digits/1/config/config.properties",
            "source": {"fileAsset": str(path)}, "serverSideEncryption": "aws:kms"}


def test_torchserve_config_baseline_passes(tmp_path: Path) -> None:
    assert validate_resource(aws_s3_bucketobject_torchserve_config, OBJECT, config_object(tmp_path, SAFE_CONFIG),
                             "cfg") == []


@pytest.mark.parametrize(("text", "message"), [
    (SAFE_CONFIG.replace("enable_model_api=false", "enable_model_api=true"),
     "TorchServe config 'cfg' sets enable_model_api=true; it must be false."),
    (SAFE_CONFIG.replace("file:///mnt/models/model-store/[^/]+[.]mar", "https?://.*"),
     "TorchServe config 'cfg' allows model URLs 'https?://.*'; restrict allowed_urls to the model store."),
    (SAFE_CONFIG.replace("allowed_urls=file:///mnt/models/model-store/[^/]+[.]mar\n", ""),
     "TorchServe config 'cfg' does not set allowed_urls (TorchServe then accepts any file or http(s) URL)."),
])
def test_torchserve_config_violations(tmp_path: Path, text: str, message: str) -> None:
    assert validate_resource(aws_s3_bucketobject_torchserve_config, OBJECT, config_object(tmp_path, text),
                             "cfg") == [message]


def test_torchserve_config_other_objects_and_unreadable_sources_are_skipped(tmp_path: Path) -> None:
    mar = mutate(config_object(tmp_path, "enable_model_api=true"), "key", "teams/v/models/d/1/model-store/d.mar")
    missing = mutate(config_object(tmp_path, SAFE_CONFIG), "source", {"fileAsset": str(tmp_path / "absent")})
    assert validate_resource(aws_s3_bucketobject_torchserve_config, OBJECT, mar) == []
    assert validate_resource(aws_s3_bucketobject_torchserve_config, OBJECT, missing) == []



def test_torchserve_config_a_source_path_that_cannot_name_a_file_is_skipped(tmp_path: Path) -> None:
    # A NUL byte made Path.read_text raise ValueError.
    broken = mutate(config_object(tmp_path, SAFE_CONFIG), "source", {"fileAsset": "config\x00.properties"})
    assert validate_resource(aws_s3_bucketobject_torchserve_config, OBJECT, broken) == []


def test_torchserve_config_a_source_that_is_no_config_file_is_reported_unread(tmp_path: Path) -> None:
    # Reading a FIFO or a device would stall the gate, and a huge file could hide a setting; neither is read.
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    huge = tmp_path / "huge.properties"
    huge.write_text(SAFE_CONFIG + "#" * 2**20)
    for source, why in ((fifo, "which is not a regular file"), (tmp_path, "which is not a regular file"),
                        (huge, "larger than 1024 KiB")):
        props = mutate(config_object(tmp_path, SAFE_CONFIG), "source", {"fileAsset": str(source)})
        found: list[list[str]] = []
        # In a thread, so that a policy blocked on the FIFO fails the test instead of hanging it.
        reader = threading.Thread(target=lambda p=props, out=found: out.append(
            validate_resource(aws_s3_bucketobject_torchserve_config, OBJECT, p, "cfg")), daemon=True)
        reader.start()
        reader.join(timeout=10)
        assert found == [[f"TorchServe config 'cfg' has source {source}, {why}: its settings cannot be checked."]]

# --- Deletion protection: Pulumi's protect option on every bucket -----------------------------------------

def protection_messages(urn: str, protect: bool) -> list[str]:
    """What the policy reports for a bucket registered under ``urn`` with (or without) ``protect``."""
    name = urn.rsplit("::", 1)[1]
    opts = PolicyResourceOptions(protect, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], None)
    args = ResourceValidationArgs(s3.BUCKET, engine_props({"forceDestroy": False}), urn, name, opts, None, {})
    messages: list[str] = []
    aws_s3_bucket_deletion_protection.validate(args, lambda message, urn=None: messages.append(message))
    return messages


def bucket_urn(owner: str, name: str) -> str:
    return f"urn:pulumi:prod::ai-platform::{owner}$aws:s3/bucket:Bucket::{name}"


@pytest.mark.parametrize(("owner", "key"), [
    ("ai-platform:storage:ModelStore", "ai-platform:modelStore.deletionProtection"),
    ("ai-platform:observability:LogArchive", "ai-platform:observability.logs.archiveDeletionProtection"),
])
def test_an_unprotected_bucket_is_flagged_naming_the_config_key_of_its_owner(owner: str, key: str) -> None:
    assert protection_messages(bucket_urn(owner, "aip-prod-b"), protect=False) == [
        "S3 bucket 'aip-prod-b' is not protected: a destroy or a replacing change would delete it or drop it "
        f"from the stack; set stack config {key} to 'protect'."]


def test_a_protected_bucket_passes() -> None:
    assert protection_messages(bucket_urn("ai-platform:storage:ModelStore", "aip-prod-models"), protect=True) == []
    assert protection_messages(urn_of(s3.BUCKET, "loose"), protect=True) == []


def test_a_bucket_outside_the_platform_components_is_told_to_use_the_protect_option() -> None:
    assert protection_messages(urn_of(s3.BUCKET, "loose"), protect=False) == [
        "S3 bucket 'loose' is not protected: a destroy or a replacing change would delete it or drop it from the "
        "stack; give the bucket the protect resource option."]


def test_the_nearest_owner_names_the_key_and_other_resources_are_ignored() -> None:
    nested = "urn:pulumi:prod::ai-platform::ai-platform:storage:ModelStore$ai-platform:observability:LogArchive" \
             "$aws:s3/bucket:Bucket::b"
    assert config_key(nested) == "ai-platform:observability.logs.archiveDeletionProtection"
    assert config_key("not-a-urn") is None
    assert validate_resource(aws_s3_bucket_deletion_protection, s3.VERSIONING, {"bucket": MODELS}) == []
