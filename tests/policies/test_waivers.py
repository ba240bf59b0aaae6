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
    max_expiry,
    refusals,
    unknown_policies,
    vet_waivers,
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


# --- The rules a waiver must meet (refusals): a compliant baseline, then one mutation per rule. ---

SEVERITIES = {"aws-s3-bucket-public-access-block": "critical", "aws-s3-bucket-sse-kms": "high",
              "aws-s3-bucket-versioning": "medium", "aws-all-resource-required-tags": "low"}
BASELINE = {"policy": "aws-s3-bucket-sse-kms", "name": "aip-prod-model-store",
            "reason": "Objects are re-encrypted with the platform key by the migration job before July.",
            "expires": "2026-08-30", "approvedBy": "security@example.com"}


def waivers_file(tmp_path: Path, **changes: str) -> Path:
    """A one-entry waivers file: the baseline with ``changes`` written verbatim, as YAML a person types."""
    entry = {**BASELINE, **changes}
    lines = [f"{'- ' if i == 0 else '  '}{key}: {value}" for i, (key, value) in enumerate(entry.items())]
    path = tmp_path / "waivers.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def refused_reasons(path: Path, today: dt.date = TODAY) -> list[str]:
    accepted, refused = vet_waivers(load_waivers(path), SEVERITIES, today)
    assert len(accepted) + len(refused) == 1
    return [r.reason for r in refused]


def test_the_compliant_baseline_is_accepted(tmp_path: Path) -> None:
    path = waivers_file(tmp_path, reason=f'"{BASELINE["reason"]}"')
    accepted, refused = vet_waivers(load_waivers(path), SEVERITIES, TODAY)
    assert refused == [] and [w.policy for w in accepted] == ["aws-s3-bucket-sse-kms"]


NOT_AN_IDENTITY = "is not an accountable identity (an email address or an IAM user or role ARN)"
NO_ONE = "is not an accountable identity:"
BORROWED = "besides the policy, resource, approver and waiver terms; it needs at least 4 of 3+ letters"


@pytest.mark.parametrize(("key", "value", "reason"), [
    ("reason", "", "reason is blank"),
    ("reason", '""', "reason is blank"),
    ("reason", '"   \\t "', "reason is blank"),
    ("reason", "~", "reason '~' is a placeholder, not a reason"),
    ("reason", "null", "reason 'null' is a placeholder, not a reason"),
    ("reason", "n/a", "reason 'n/a' is a placeholder, not a reason"),
    ("reason", "TBD", "reason 'TBD' is a placeholder, not a reason"),
    ("reason", "temp", "reason 'temp' is a placeholder, not a reason"),
    ("reason", '"-"', "reason '-' is a placeholder, not a reason"),
    ("reason", "TODO write the reason once the ticket is triaged",
     "reason contains the placeholder 'TODO'"),
    ("reason", "vendor demo", "reason 'vendor demo' is 11 characters; a reason is a sentence of at least 20"),
    ("reason", "aaaaaaaaaaaaaaaaaaaaaaaaa",
     "reason 'aaaaaaaaaaaaaaaaaaaaaaaaa' is not a sentence: it needs at least 4 different words"),
    ("reason", "aws-s3-bucket-sse-kms-and-tls",
     f"reason 'aws-s3-bucket-sse-kms-and-tls' says too little: 2 word(s) of its own (and, tls) {BORROWED}"),
    ("reason", "aip-prod-model-store-eu-west",
     f"reason 'aip-prod-model-store-eu-west' says too little: 1 word(s) of its own (west) {BORROWED}"),
    ("approvedBy", "null", f"approvedBy 'null' {NOT_AN_IDENTITY}"),
    ("approvedBy", "~", f"approvedBy '~' {NOT_AN_IDENTITY}"),
    ("approvedBy", "", f"approvedBy '' {NOT_AN_IDENTITY}"),
    ("approvedBy", "security", f"approvedBy 'security' {NOT_AN_IDENTITY}"),
    ("approvedBy", "nobody@example.com", f"approvedBy 'nobody@example.com' {NO_ONE} 'nobody' is a generic or "
                                         "placeholder mailbox"),
    ("approvedBy", '"alice@example.com, bob@example.com"',
     f"approvedBy 'alice@example.com, bob@example.com' {NOT_AN_IDENTITY}"),
    ("approvedBy", "arn:aws:iam::123456789012:role/security-approver", None),
    ("approvedBy", "arn:aws:iam::123456789012:user/alice", None),
    ("expires", "2999-12-31", "expires 2999-12-31 is 355594 days after 2026-06-01; "
                              "a waiver of a high policy lasts at most 90 days (until 2026-08-30)"),
    ("expires", "2026-08-31", "expires 2026-08-31 is 91 days after 2026-06-01; "
                              "a waiver of a high policy lasts at most 90 days (until 2026-08-30)"),
    ("expires", "2026-08-30", None),  # exactly the maximum is accepted
    ("policy", "aws-s3-bucket-sse", "policy 'aws-s3-bucket-sse' is not in the pack; expires 2026-08-30 is 90 days "
                                    "after 2026-06-01; a waiver of a policy of unknown severity lasts at most 30 "
                                    "days (until 2026-07-01)"),
])
def test_each_mutation_is_refused_with_its_reason(tmp_path: Path, key: str, value: str, reason: str | None) -> None:
    assert refused_reasons(waivers_file(tmp_path, **{key: value})) == ([reason] if reason else [])


def test_a_reason_that_only_repeats_another_field_is_refused(tmp_path: Path) -> None:
    path = waivers_file(tmp_path, name="aip-prod-model-store-eu-west-1", reason="aip-prod-model-store-eu-west-1")
    assert refused_reasons(path) == ["reason only repeats the resource"]


@pytest.mark.parametrize(("severity", "days", "policy"), [
    ("critical", 30, "a critical policy"), ("high", 90, "a high policy"), ("medium", 180, "a medium policy"),
    ("low", 365, "a low policy"), ("unspecified", 30, "a policy of unknown severity"),
])
def test_the_longest_waiver_depends_on_the_severity_of_its_policy(severity: str, days: int, policy: str) -> None:
    at_most = Waiver("p", BASELINE["reason"], TODAY + dt.timedelta(days=days), "security@example.com", name="n")
    assert max_expiry(severity, TODAY) == at_most.expires
    assert refusals(at_most, severity, TODAY) == []
    yesterday = TODAY - dt.timedelta(days=1)
    assert refusals(at_most, severity, yesterday) == [
        f"expires {at_most.expires} is {days + 1} days after {yesterday}; "
        f"a waiver of {policy} lasts at most {days} days (until {at_most.expires - dt.timedelta(days=1)})"]


def test_every_broken_rule_is_reported_together() -> None:
    waiver = Waiver("aws-s3-bucket-versioning", "~", dt.date(2999, 1, 1), "null", urn="aip-prod-model-store")
    assert refusals(waiver, "medium", TODAY) == [
        "urn 'aip-prod-model-store' is not a Pulumi URN (urn:pulumi:<stack>::<project>::<type>::<name>)",
        "reason '~' is a placeholder, not a reason",
        f"approvedBy 'null' {NOT_AN_IDENTITY}",
        "expires 2999-01-01 is 355230 days after 2026-06-01; a waiver of a medium policy lasts at most 180 days "
        "(until 2026-11-28)",
    ]


def test_refused_waivers_are_kept_apart_and_waive_nothing() -> None:
    good = Waiver("aws-s3-bucket-sse-kms", BASELINE["reason"], TODAY, "security@example.com", urn=URN)
    forever = Waiver("aws-s3-bucket-versioning", BASELINE["reason"], dt.date(2999, 12, 31), "security@example.com",
                     urn=URN)
    accepted, refused = vet_waivers([good, forever], SEVERITIES, TODAY)
    assert accepted == [good]
    assert [(r.waiver, r.reason.split(";")[0]) for r in refused] == [(forever, "expires 2999-12-31 is 355594 days "
                                                                               "after 2026-06-01")]
    assert not is_waived(accepted, "aws-s3-bucket-versioning", URN, TODAY)


def test_a_null_urn_beside_a_name_is_no_urn(tmp_path: Path) -> None:
    (waiver,) = load_waivers(waivers_file(tmp_path, urn="~"))
    assert (waiver.urn, waiver.name) == (None, "aip-prod-model-store")
    with pytest.raises(WaiverError) as caught:
        load_waivers(waivers_file(tmp_path, name="null"))
    assert caught.value.problems == ["entry 0: give exactly one of urn or name"]


@pytest.mark.parametrize(("key", "value", "problem"), [
    ("expires", "20260830", "entry 0: expires '20260830' is not YYYY-MM-DD"),
    ("expires", "2026-W35-1", "entry 0: expires '2026-W35-1' is not YYYY-MM-DD"),
    ("expires", "~", "entry 0: expires '~' is not YYYY-MM-DD"),
    ("reason", "[a, b]", "entry 0: reason must be a single value, not a list or mapping"),
])
def test_a_file_that_cannot_be_read_as_intended_is_still_an_error(tmp_path: Path, key: str, value: str,
                                                                  problem: str) -> None:
    with pytest.raises(WaiverError) as caught:
        load_waivers(waivers_file(tmp_path, **{key: value}))
    assert caught.value.problems == [problem]


def test_the_shipped_file_meets_the_rules() -> None:
    severities = {p.name: p.severity.value for p in ALL_POLICIES if p.severity is not None}
    assert vet_waivers(load_waivers(DEFAULT_PATH), severities, dt.date.today())[1] == []


@pytest.mark.parametrize(("text", "problem"), [
    ("- policy: a\n  name: x: y\n", "line 2, column 10: not valid YAML: mapping values are not allowed here"),
    ("- policy: 'a\n", "line 2, column 1: not valid YAML: while scanning a quoted scalar, found unexpected end "
                       "of stream"),
    ("- policy: a\n\treason: b\n", "line 2, column 1: not valid YAML: while scanning for the next token, found "
                                   "character '\\t' that cannot start any token"),
    ("- policy: a\n---\n- policy: b\n", "line 2, column 1: not valid YAML: expected a single document in the "
                                       "stream, but found another document"),
    ("- policy: \x07\n", "line 1: not valid YAML: unacceptable character #x0007: special characters are not "
                         "allowed"),
])
def test_a_file_that_is_not_yaml_is_an_error_naming_file_and_line(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "waivers.yaml"
    path.write_text(text)
    with pytest.raises(WaiverError) as caught:
        load_waivers(path)
    assert caught.value.problems == [problem]
    assert str(caught.value) == f"{path}: {problem}"


def test_a_file_that_is_not_utf8_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "waivers.yaml"
    path.write_bytes(b"- policy: \xff\n")
    with pytest.raises(WaiverError) as caught:
        load_waivers(path)
    assert caught.value.problems == ["byte 10: not UTF-8 text"]


def test_a_second_reason_pasted_below_the_first_is_an_error_not_last_wins(tmp_path: Path) -> None:
    path = waivers_file(tmp_path)
    path.write_text(path.read_text() + "  reason: tbd\n")
    with pytest.raises(WaiverError) as caught:
        load_waivers(path)
    assert caught.value.problems == ["line 6: duplicate key 'reason' (first on line 3)"]
    assert str(caught.value) == f"{path}: line 6: duplicate key 'reason' (first on line 3)"


@pytest.mark.parametrize(("text", "problem"), [
    ("- {policy: a, name: n, policy: b}\n", "line 1: duplicate key 'policy' (first on line 1)"),
    ("- policy: a\n  urn: u\n- policy: b\n  name: n\n  name: m\n", "line 5: duplicate key 'name' (first on line 4)"),
])
def test_a_key_given_twice_is_an_error_naming_the_key_and_line(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "waivers.yaml"
    path.write_text(text)
    with pytest.raises(WaiverError) as caught:
        load_waivers(path)
    assert caught.value.problems == [problem]


@pytest.mark.parametrize(("reason", "refusal"), [
    # Names, not reasons: every word comes from the policy, the resource or the approver.
    ("aws-s3-bucket-sse-kms aws-s3-bucket-sse-kms",
     f"reason 'aws-s3-bucket-sse-kms aws-s3-bucket-sse-kms' says too little: 0 word(s) of its own {BORROWED}"),
    ("aip prod model store, aipProdModelStore",
     f"reason 'aip prod model store, aipProdModelStore' says too little: 0 word(s) of its own {BORROWED}"),
    ("security example com model store security team",
     f"reason 'security example com model store security team' says too little: 1 word(s) of its own (team) "
     f"{BORROWED}"),
    ("Waiver for this policy on this resource",
     f"reason 'Waiver for this policy on this resource' says too little: 2 word(s) of its own (for, this) "
     f"{BORROWED}"),
    # Gibberish: enough "words", too few of them shaped like words.
    ("qwerty zxcvbn uiop hjkl", "reason 'qwerty zxcvbn uiop hjkl' is not written in words: 0 of its own words "
                                "look like ordinary words; it needs at least 2"),
    ("abcd efgh ijkl mnop qrst", "reason 'abcd efgh ijkl mnop qrst' is not written in words: 0 of its own words "
                                 "look like ordinary words; it needs at least 2"),
    ("sdkfjh qpwoeiru zmxncb alskdjf", "reason 'sdkfjh qpwoeiru zmxncb alskdjf' is not written in words: 1 of its "
                                       "own words look like ordinary words (qpwoeiru); it needs at least 2"),
    ("aaaa eeee iiii oooo uuuu", "reason 'aaaa eeee iiii oooo uuuu' is not written in words: 0 of its own words "
                                 "look like ordinary words; it needs at least 2"),
    # Never finished.
    ("asdf qwer zxcv uiop", "reason contains the placeholder 'asdf'"),
    ('"To do: say why the bucket keeps its own key"', "reason contains the placeholder 'To do'"),
    ('"Still to-do, the migration team will explain"', "reason contains the placeholder 'to-do'"),
    ("reason goes here, fill in later", "reason contains the placeholder 'goes here'"),
    ("the owners will fill in the details later", "reason contains the placeholder 'fill in'"),
    ("<reason>", "reason contains the placeholder '<reason>'"),
    ('"Accepted until {{ticket}} closes, see the tracker"', "reason contains the placeholder '{{ticket}}'"),
    ("xxx", "reason 'xxx' is a placeholder, not a reason"),
    ("placeholder", "reason 'placeholder' is a placeholder, not a reason"),
    ("Lorem ipsum dolor sit amet consectetur", "reason contains the placeholder 'Lorem'"),
    ("blah blah blah something about keys", "reason contains the placeholder 'blah'"),
    ("Ticket XXXX, the platform key arrives later", "reason contains the placeholder 'XXXX'"),
    # Real reasons, terse or not, and "to do" as plain English.
    ("Legacy client requires TLS endpoint until migration completes", None),
    ("We need a week to do the migration properly.", None),
    ('"SEC-1234: the vendor\'s TLS terminator cannot present KMS keys yet; fixed in release 4.2."', None),
])
def test_a_reason_must_say_something_of_its_own_in_words(tmp_path: Path, reason: str, refusal: str | None) -> None:
    assert refused_reasons(waivers_file(tmp_path, reason=reason)) == ([refusal] if refusal else [])


@pytest.mark.parametrize(("approver", "refusal"), [
    ("me@example.com", f"approvedBy 'me@example.com' {NO_ONE} 'me' is a generic or placeholder mailbox"),
    ("no.reply@example.com", f"approvedBy 'no.reply@example.com' {NO_ONE} 'no.reply' is a generic or placeholder "
                             "mailbox"),
    ("no_reply@example.com", f"approvedBy 'no_reply@example.com' {NO_ONE} 'no_reply' is a generic or placeholder "
                             "mailbox"),
    ("do-not-reply@example.com", f"approvedBy 'do-not-reply@example.com' {NO_ONE} 'do-not-reply' is a generic or "
                                 "placeholder mailbox"),
    ("Admin+waivers@example.com", f"approvedBy 'Admin+waivers@example.com' {NO_ONE} 'Admin+waivers' is a generic "
                                  "or placeholder mailbox"),
    ("change.me@example.com", f"approvedBy 'change.me@example.com' {NO_ONE} 'change.me' is a generic or "
                              "placeholder mailbox"),
    ("x@example.com", f"approvedBy 'x@example.com' {NO_ONE} 'x' is too short to name a person or team"),
    ("x.@example.com", f"approvedBy 'x.@example.com' {NO_ONE} 'x.' is too short to name a person or team"),
    ("arn:aws:sts::123456789012:assumed-role/SecurityApprover/alice",
     f"approvedBy 'arn:aws:sts::123456789012:assumed-role/SecurityApprover/alice' {NO_ONE} an STS session names "
     "one run under a role (a CI job, say), not an approver"),
    ("arn:aws:sts::123456789012:assumed-role/github-actions/GitHubActions",
     f"approvedBy 'arn:aws:sts::123456789012:assumed-role/github-actions/GitHubActions' {NO_ONE} an STS session "
     "names one run under a role (a CI job, say), not an approver"),
    ("arn:aws:iam::123456789012:root",
     f"approvedBy 'arn:aws:iam::123456789012:root' {NO_ONE} the account root user is no one in particular"),
    ("jo@example.com", None),
    ("a.li@example.com", None),
    ("platform-security@example.com", None),
])
def test_an_approver_must_be_someone_who_can_be_asked(tmp_path: Path, approver: str, refusal: str | None) -> None:
    assert refused_reasons(waivers_file(tmp_path, approvedBy=approver)) == ([refusal] if refusal else [])
