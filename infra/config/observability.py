"""Sizes and retention of the platform's metrics (Prometheus) and logs (Elasticsearch).

Every key has a per-environment default (`ENVIRONMENT_DEFAULTS`): a stack file only sets what differs.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from infra.config.alerts import AlertsConfig
from infra.config.base import FrozenModel
from infra.config.fields import StrictInt, StrictStr

# What compliance asks of production; a prod stack asking for less is a config error. The retention and
# recovery windows are also the prod minimums of the policy pack (policies/config/prod.json); a test keeps
# them equal, so a stack the config accepts also passes the gate.
PROD_MINIMUMS = {"elasticsearch_nodes": 3, "retention_days": 365, "replicas": 2,
                 "snapshot_retention_days": 365, "log_retention_days": 365,
                 "access_log_expiration_days": 365, "noncurrent_version_expiration_days": 30}


def prod_minimum(value: int, info: ValidationInfo) -> int:
    """Field validator: the loader passes the stack's environment as validation context."""
    minimum = PROD_MINIMUMS[info.field_name]
    if (info.context or {}).get("environment") == "prod" and value < minimum:
        raise ValueError(f"must be at least {minimum} in prod")
    return value


# Elasticsearch SLM cron: seconds minutes hours day-of-month month day-of-week, e.g. "0 30 1 * * ?".
SLM_CRON_FIELDS = 6


class MetricsConfig(FrozenModel):
    """Prometheus and Alertmanager (kube-prometheus-stack)."""

    retention_days: StrictInt = Field(ge=1, le=3650, description="Days Prometheus keeps samples.")
    storage_gib: StrictInt = Field(ge=10, le=16384, description="Encrypted volume of each Prometheus replica (GiB).")
    replicas: StrictInt = Field(ge=1, le=5, description="Prometheus and Alertmanager replicas (2 or more in prod).")

    _prod = field_validator("replicas")(prod_minimum)


class LogsConfig(FrozenModel):
    """Elasticsearch, Kibana and Filebeat (ECK), and the S3 archive of log snapshots."""

    elasticsearch_nodes: StrictInt = Field(
        ge=1, le=15, description="Elasticsearch nodes, spread across zones (at least 3 in prod).")
    storage_gib: StrictInt = Field(ge=10, le=16384, description="Encrypted volume of each Elasticsearch node (GiB).")
    memory_gib: StrictInt = Field(ge=2, le=64, description="Memory request and limit of each Elasticsearch node (GiB).")
    retention_days: StrictInt = Field(
        ge=1, le=3650, description="Days logs stay searchable; the index lifecycle policy deletes older ones.")
    snapshot_schedule: StrictStr = Field(
        description="When snapshots go to the archive bucket (Elasticsearch cron: sec min hour day month weekday).")
    snapshot_retention_days: StrictInt = Field(
        ge=1, le=3650, description="Days snapshots are kept in the archive (at least 365 in prod).")
    archive_deletion_protection: Literal["protect", "retain", "none"] = Field(
        description="`protect` blocks deletes of the archive bucket, `retain` keeps it when the stack is destroyed.")

    _prod = field_validator("elasticsearch_nodes", "retention_days", "snapshot_retention_days")(prod_minimum)

    @field_validator("snapshot_schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        if len(value.split()) not in (SLM_CRON_FIELDS, SLM_CRON_FIELDS + 1):
            raise ValueError('must be an Elasticsearch cron expression such as "0 30 1 * * ?" '
                             "(seconds minutes hours day-of-month month day-of-week [year])")
        return value


class ObservabilityConfig(FrozenModel):
    """Metrics and logs of the platform."""

    metrics: MetricsConfig = Field(description="Prometheus and Alertmanager.")
    logs: LogsConfig = Field(description="Elasticsearch, Kibana, Filebeat and log snapshots.")
    alerts: AlertsConfig = Field(
        default_factory=AlertsConfig,
        description="Alertmanager receivers (webhook, slack, pagerduty, email) and routes by team and severity; "
                    "credentials only as Pulumi secrets.")


ENVIRONMENT_DEFAULTS: dict[str, dict[str, dict[str, Any]]] = {
    "dev": {
        "metrics": {"retentionDays": 7, "storageGib": 50, "replicas": 1},
        "logs": {"elasticsearchNodes": 1, "storageGib": 50, "memoryGib": 4, "retentionDays": 30,
                 "snapshotSchedule": "0 30 1 * * ?", "snapshotRetentionDays": 30,
                 "archiveDeletionProtection": "retain"},
    },
    "staging": {
        "metrics": {"retentionDays": 15, "storageGib": 100, "replicas": 2},
        "logs": {"elasticsearchNodes": 3, "storageGib": 100, "memoryGib": 4, "retentionDays": 90,
                 "snapshotSchedule": "0 30 1 * * ?", "snapshotRetentionDays": 90,
                 "archiveDeletionProtection": "retain"},
    },
    "prod": {
        "metrics": {"retentionDays": 30, "storageGib": 200, "replicas": 2},
        "logs": {"elasticsearchNodes": 3, "storageGib": 500, "memoryGib": 8, "retentionDays": 365,
                 "snapshotSchedule": "0 30 1 * * ?", "snapshotRetentionDays": 365,
                 "archiveDeletionProtection": "protect"},
    },
}
def with_environment_defaults(value: Any, environment: Any) -> Any:
    """The stack's `observability` object with the environment's defaults under every key it leaves out."""
    # An unknown environment is reported on its own key; prod's defaults keep this key from echoing it.
    known = environment if isinstance(environment, str) and environment in ENVIRONMENT_DEFAULTS else "prod"
    defaults = ENVIRONMENT_DEFAULTS[known]
    if not (value is None or isinstance(value, dict)):
        return value
    given = value or {}
    merged: dict[str, Any] = dict(given)
    for section, keys in defaults.items():
        own = given.get(section, {})
        merged[section] = {**keys, **own} if isinstance(own, dict) else own
    return merged
