"""What a recovery stack serves from: the replicas of the platform stack it restores, read from that stack's outputs.

The restored stack exports its replicas (output `recovery`, see infra/platform_outputs.py); the recovery stack reads
them through a StackReference, so it names no bucket itself and always follows what the restored stack replicates.
The state backend must therefore outlive the primary region (Pulumi Cloud, or a self-managed backend whose bucket is
itself replicated): see docs/recovery.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from infra.components.s3_bucket import ExistingBucket
from infra.config import ConfigError, PlatformConfig, Problem, stack_file
from infra.platform_outputs import PlatformReference

# The replicated buckets of a platform stack, by purpose (Replication's sources).
REPLICATED = ("models", "log-archive")


def replicas_of(recovery: Any, config: PlatformConfig) -> dict[str, dict[str, str]]:
    """The restored stack's replicas, by purpose; a config error when it replicates nothing or elsewhere."""
    source = str(config.recovery.restore_from) if config.recovery else ""
    replicas = recovery.get("replicas") if isinstance(recovery, dict) else None
    missing = [purpose for purpose in REPLICATED if not isinstance((replicas or {}).get(purpose), dict)]
    if missing:
        raise ConfigError(stack_file(config.stack), [Problem(
            "ai-platform:recovery.restoreFrom", f"{source} replicates no {' and no '.join(missing)} bucket: set its "
                                                "ai-platform:recovery.region and deploy it first", source)])
    if recovery.get("region") != config.region:
        raise ConfigError(stack_file(config.stack), [Problem(
            "aws:region", f"must be the recovery region of {source} ({recovery.get('region')}), where its replicas "
                          "are", config.region)])
    return {purpose: dict(replicas[purpose]) for purpose in REPLICATED}


@dataclass(frozen=True)
class RestoredData:
    """The replica buckets a recovery stack uses as its model store and log archive, and their keys."""

    source: str
    models: ExistingBucket
    models_key_arn: pulumi.Output[str]
    log_archive: ExistingBucket
    log_archive_key_arn: pulumi.Output[str]


def _bucket(replicas: pulumi.Output[dict[str, dict[str, str]]], purpose: str) -> ExistingBucket:
    return ExistingBucket(bucket=replicas.apply(lambda r: r[purpose]["bucket"]),
                          arn=replicas.apply(lambda r: r[purpose]["bucketArn"]),
                          log_bucket=replicas.apply(lambda r: r[purpose]["logBucket"]))


def restored_data(config: PlatformConfig, prefix: str) -> RestoredData:
    """Read the replicas of ``config.recovery.restore_from`` (a recovery stack's config)."""
    if config.recovery is None or config.recovery.restore_from is None:
        raise ValueError(f"stack {config.stack} restores no other stack")
    source = config.recovery.restore_from
    reference = PlatformReference(f"{prefix}-restore-from", source)
    replicas = reference.require("recovery").apply(lambda recovery: replicas_of(recovery, config))
    return RestoredData(source=source, models=_bucket(replicas, "models"),
                        models_key_arn=replicas.apply(lambda r: r["models"]["kmsKeyArn"]),
                        log_archive=_bucket(replicas, "log-archive"),
                        log_archive_key_arn=replicas.apply(lambda r: r["log-archive"]["kmsKeyArn"]))
