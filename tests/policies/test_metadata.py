"""Every policy in the pack carries complete metadata and lives in a module of its own."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pulumi_policy import PolicyComplianceFramework, Severity

from policies.frameworks import FRAMEWORK_TAGS
from policies.registry import ALL_POLICIES

ROOT = Path(__file__).resolve().parents[2]
NAME = re.compile(r"^(aws|kubernetes)-[a-z0-9]+-[a-z0-9]+-[a-z0-9-]+$")


def test_pack_has_at_least_thirty_uniquely_named_policies() -> None:
    names = [p.name for p in ALL_POLICIES]
    assert len(names) >= 30
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("policy", ALL_POLICIES, ids=lambda p: p.name)
def test_policy_metadata_is_complete(policy) -> None:
    assert NAME.match(policy.name), policy.name
    assert policy.description and policy.description.endswith(".")
    assert isinstance(policy.severity, Severity)
    assert isinstance(policy.framework, PolicyComplianceFramework)
    assert policy.framework.name and policy.framework.version and policy.framework.reference
    assert policy.remediation_steps and policy.url and policy.url.startswith("https://")
    assert set(policy.tags) & FRAMEWORK_TAGS, f"{policy.name} names no further framework in its tags"


def test_one_policy_per_module() -> None:
    files = [f for f in (ROOT / "policies").rglob("*.py")
             if re.search(r"^\w+ = (ResourceValidationPolicy|StackValidationPolicy)\(", f.read_text(), re.M)]
    assert len(files) == len(ALL_POLICIES)
    for path in files:
        assert len(re.findall(r"ValidationPolicy\(\n", path.read_text())) == 1, path


@pytest.mark.parametrize("environment", ["dev", "staging", "prod"])
def test_pack_config_files_name_only_real_policies(environment: str) -> None:
    config = json.loads((ROOT / "policies" / "config" / f"{environment}.json").read_text())
    names = {p.name for p in ALL_POLICIES}
    expected = "advisory" if environment == "dev" else "mandatory"
    assert config["all"] == expected
    for key, value in config.items():
        if key != "all":
            assert key in names
            assert value["enforcementLevel"] in ("advisory", "mandatory", "disabled")
            schema = next(p for p in ALL_POLICIES if p.name == key).config_schema
            assert set(value) - {"enforcementLevel"} <= set(schema.properties if schema else {})
