"""aws-s3-bucket-deletion-protection: every bucket carries Pulumi's `protect` resource option.

The platform's buckets hold data that outlives any one deployment (model artifacts, log snapshots).
Stack config chooses how they are kept: `protect` (the `protect` option and retainOnDelete), `retain`
(retainOnDelete only) or `none`. Only `protect` makes the engine refuse a delete or replacement of the
bucket; `retain` lets a destroy or a replacing change drop the bucket from the stack without a word, so
it lives on unmanaged (its data no longer covered by the stack's lifecycle rules and policies), and `none`
deletes it. The engine hands analyzers `protect` but not retainOnDelete, so this policy can only tell
`protect` from the other two.
"""

from __future__ import annotations

from pulumi_policy import ReportViolation, ResourceValidationArgs, ResourceValidationPolicy, Severity

from policies.aws.s3.buckets import BUCKET
from policies.frameworks import ISO27001, SOC2, platform_baseline

# The components that own the platform's buckets (infra/components/model_store.py, log_archive.py) and
# the stack config key that chooses their deletion protection.
CONFIG_KEYS = {
    "ai-platform:storage:ModelStore": "ai-platform:modelStore.deletionProtection",
    "ai-platform:observability:LogArchive": "ai-platform:observability.logs.archiveDeletionProtection",
}


def config_key(urn: str) -> str | None:
    """The stack config key that chooses the protection of the resource ``urn``, from its nearest owner.

    A URN's third `::` part is the qualified type: the types of its ancestors and its own, `$`-separated.
    """
    parts = urn.split("::")
    if len(parts) < 4:
        return None
    ancestors = parts[2].split("$")[:-1]
    return next((CONFIG_KEYS[t] for t in reversed(ancestors) if t in CONFIG_KEYS), None)


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != BUCKET or (args.opts is not None and args.opts.protect):
        return
    key = config_key(args.urn)
    fix = f"set stack config {key} to 'protect'" if key else "give the bucket the protect resource option"
    report_violation(f"S3 bucket '{args.name}' is not protected: a destroy or a replacing change would delete it "
                     f"or drop it from the stack; {fix}.")


aws_s3_bucket_deletion_protection = ResourceValidationPolicy(
    name="aws-s3-bucket-deletion-protection",
    description="S3 buckets carry Pulumi's protect option, so no update or destroy can delete the data they keep.",
    validate=validate,
    severity=Severity.MEDIUM,
    framework=platform_baseline("data-retention"),
    tags=["aws", "s3", "data-retention", SOC2, ISO27001],
    remediation_steps="Set the bucket's deletion protection to 'protect' in the stack config: "
                      "ai-platform:modelStore.deletionProtection for the model store, "
                      "ai-platform:observability.logs.archiveDeletionProtection for the log archive "
                      "(infra/components/model_store.py deletion_options gives protect=True and retain_on_delete).",
    url="https://www.pulumi.com/docs/iac/concepts/resources/options/protect/",
)
