"""The waivers file and its loader."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from policies.registry import ALL_POLICIES
from policies.waivers import (
    DEFAULT_PATH,
    Waiver,
    WaiverError,
    expired_waivers,
    find_waiver,
    is_waived,
    load_waivers,
    unknown_policies,
)

URN = "urn:pulumi:dev::ai-platform::ai-platform:cluster:Cluster$aws:eks/cluster:Cluster::aip-dev-cluster-eks"
TODAY = dt.date(2026, 6, 1)


def test_shipped_waivers_load_name_real_policies_and_waive_nothing_today() -> None:
    waivers = load_waivers(DEFAULT_PATH)
    assert unknown_policies(waivers, [p.name for p in ALL_POLICIES]) == []
    assert expired_waivers(waivers, dt.date.today()) == waivers  # only an expired example ships


def test_a_waiver_matches_by_name_or_urn_until_it_expires() -> None:
    by_name = Waiver("aws-eks-cluster-endpoint-private", "demo", dt.date(2026, 6, 1), "sec", name="aip-dev-cluster-eks")
    by_urn = Waiver("aws-kms-key-rotation", "x", dt.date(2026, 6, 1), "sec", urn=URN)
    waivers = [by_name, by_urn]
    assert find_waiver(waivers, "aws-eks-cluster-endpoint-private", URN, TODAY) is by_name
    assert is_waived(waivers, "aws-kms-key-rotation", URN, TODAY)
    assert not is_waived(waivers, "aws-kms-key-rotation", URN.replace("dev", "prod", 1) + "x", TODAY)
    assert not is_waived(waivers, "aws-eks-cluster-audit-logging", URN, TODAY)
    assert not is_waived(waivers, "aws-kms-key-rotation", None, TODAY)
    assert not is_waived(waivers, "aws-kms-key-rotation", URN, TODAY + dt.timedelta(days=1))
    assert expired_waivers(waivers, TODAY + dt.timedelta(days=1)) == waivers


def test_every_problem_of_a_bad_file_is_reported_together(tmp_path: Path) -> None:
    path = tmp_path / "waivers.yaml"
    path.write_text("- policy: a\n  urn: u\n  name: n\n  reason: r\n  expires: 2026-13-01\n  approvedBy: s\n"
                    "- policy: b\n  reason: r\n  expires: 2026-01-01\n  by: s\n")
    with pytest.raises(WaiverError) as caught:
        load_waivers(path)
    assert caught.value.problems == [
        "entry 0: give exactly one of urn or name",
        "entry 0: expires '2026-13-01' is not YYYY-MM-DD",
        "entry 1: missing approvedBy",
        "entry 1: give exactly one of urn or name",
        "entry 1: unknown keys by",
    ]


def test_an_empty_file_has_no_waivers(tmp_path: Path) -> None:
    path = tmp_path / "waivers.yaml"
    path.write_text("# nothing waived\n")
    assert load_waivers(path) == []
