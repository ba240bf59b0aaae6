"""All deploy checks together, as `aip preview` runs them: every shipped stack deploys the first time."""

from __future__ import annotations

import pytest

from infra.config import TeamConfig
from infra.graph_checks import run_deploy_checks
from tests.graph_checks.conftest import STACKS


@pytest.mark.integration
@pytest.mark.parametrize("stack", STACKS)
def test_every_shipped_stack_passes_every_deploy_check(preview, stack_config, charts_dir, crds_dir, stack):
    config = stack_config(stack)
    platform = preview(config.platform_stack.rsplit("/", 1)[-1]) if isinstance(config, TeamConfig) else None
    findings = run_deploy_checks(preview(stack), config, platform=platform, charts_dir=charts_dir,
                                 crds_dir=crds_dir)
    assert [f.render() for f in findings] == []


@pytest.mark.integration
def test_a_team_stack_without_its_platform_preview_is_not_silently_passed(preview, stack_config):
    findings = run_deploy_checks(preview("vision-dev"), stack_config("vision-dev"))
    assert [f.check for f in findings] == ["identity"]
