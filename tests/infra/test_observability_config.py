"""Observability config: per-environment defaults, partial overrides, and what prod may not go below."""

from __future__ import annotations

import pytest

from infra.config import parse_stack_config
from infra.config.observability import ENVIRONMENT_DEFAULTS, with_environment_defaults
from tests.infra.test_config import platform, problems


def parse(environment: str, **observability):
    values = platform(environment=environment, observability=observability or None)
    return parse_stack_config(values, project="ai-platform", stack=environment).observability


@pytest.mark.parametrize("environment", ["dev", "staging", "prod"])
def test_every_key_defaults_per_environment(environment):
    config = parse(environment)
    defaults = ENVIRONMENT_DEFAULTS[environment]
    assert config.metrics.model_dump(by_alias=True) == defaults["metrics"]
    assert config.logs.model_dump(by_alias=True) == defaults["logs"]


def test_dev_is_small_and_prod_is_highly_available_and_kept_a_year():
    dev, prod = parse("dev"), parse("prod")
    assert dev.logs.elasticsearch_nodes == 1 and dev.logs.retention_days == 30
    assert prod.logs.elasticsearch_nodes >= 3 and prod.logs.retention_days >= 365
    assert prod.metrics.replicas >= 2 and prod.logs.archive_deletion_protection == "protect"


def test_a_stack_overrides_one_key_and_keeps_the_other_defaults():
    config = parse("dev", logs={"retentionDays": 14})
    assert config.logs.retention_days == 14
    assert config.logs.elasticsearch_nodes == ENVIRONMENT_DEFAULTS["dev"]["logs"]["elasticsearchNodes"]
    assert config.metrics.retention_days == ENVIRONMENT_DEFAULTS["dev"]["metrics"]["retentionDays"]


def test_prod_minimums_are_reported_key_by_key():
    values = platform(environment="prod", network={"natGateways": "perAz"},
                      observability={"logs": {"elasticsearchNodes": 1, "retentionDays": 30},
                                     "metrics": {"replicas": 1}})
    assert problems(values, "prod") == [
        "ai-platform:observability.metrics.replicas = 1: must be at least 2 in prod",
        "ai-platform:observability.logs.elasticsearchNodes = 1: must be at least 3 in prod",
        "ai-platform:observability.logs.retentionDays = 30: must be at least 365 in prod",
    ]


def test_the_same_values_are_fine_outside_prod():
    config = parse("staging", logs={"elasticsearchNodes": 1, "retentionDays": 30}, metrics={"replicas": 1})
    assert config.logs.elasticsearch_nodes == 1


def test_bad_values_name_key_value_and_what_is_allowed():
    values = platform(observability={"logs": {"snapshotSchedule": "daily", "storageGib": 5},
                                     "metrics": {"retention": 7}})
    assert problems(values) == [
        "ai-platform:observability.metrics.retention = 7: unknown key (did you mean retentionDays?); allowed keys: "
        "retentionDays, storageGib, replicas",
        "ai-platform:observability.logs.storageGib = 5: must be at least 10",
        'ai-platform:observability.logs.snapshotSchedule = "daily": must be an Elasticsearch cron expression such as '
        '"0 30 1 * * ?" (seconds minutes hours day-of-month month day-of-week [year])',
    ]


def test_a_section_that_is_not_an_object_is_reported_not_merged():
    assert with_environment_defaults({"logs": 5}, "dev")["logs"] == 5
    assert problems(platform(observability={"logs": 5})) == [
        "ai-platform:observability.logs = 5: must be a mapping of keys to values"]
