"""Promotion, rollback and canary start as edits of a team stack's text: comments, order, quoting and flow style kept,
only the changed key's lines differ (exact text comparisons), and every refusal says why."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.delivery.stack_edit import (
    NothingToRollOut,
    StackEditError,
    promote,
    promote_text,
    rollback,
    rollback_text,
    start_canary_text,
)
from tests.conftest import ROOT

STABLE, CANARY = "ba9876543210", "0123456789ab"

# A team stack as a person writes one: comments everywhere, flow and block style mixed, quoted strings, and a
# block canary whose last line carries its own comment, followed by a comment that belongs to the next key.
WITH_CANARY = """\
# Team stack of vision in prod.
config:
  aws:region: us-east-1
  ai-platform:environment: prod
  ai-platform:team: vision
  ai-platform:costCenter: vision-ml
  ai-platform:dataClassification: confidential
  ai-platform:platformStack: acme/ai-platform/prod
  ai-platform:models:
    - name: digits
      resources: {cpu: "4", memory: 16Gi, gpu: 1}   # spaced on purpose
      gpuPool: inference-l40s
      # Rolling out the retrained weights.
      canary:
        trafficPercent: 10
        stableVersion: "ba9876543210"  # what served last week

      # KEDA keeps about eight requests in flight per replica.
      autoscaling: {metric: concurrency, target: 8, min: 2, max: 8}
    - name: ranker
      canary: {trafficPercent: 5, stableVersion: 00aa00aa00aa}  # flow style
      # The last comment of the file.
"""

PROMOTED = WITH_CANARY.replace("""\
      canary:
        trafficPercent: 10
        stableVersion: "ba9876543210"  # what served last week
""", """\
      version: 0123456789ab
""")

ROLLED_BACK = WITH_CANARY.replace("""\
      canary:
        trafficPercent: 10
        stableVersion: "ba9876543210"  # what served last week
""", """\
      version: "ba9876543210"
""")


def changed_lines(before: str, after: str) -> tuple[list[str], list[str]]:
    old, new = before.splitlines(), after.splitlines()
    return [line for line in old if line not in new], [line for line in new if line not in old]


def test_promote_replaces_the_canary_block_by_a_pin_of_its_version_and_keeps_everything_else():
    after, summary = promote_text(WITH_CANARY, "digits", CANARY)
    assert after == PROMOTED
    assert changed_lines(WITH_CANARY, after) == (
        ["      canary:", "        trafficPercent: 10",
         '        stableVersion: "ba9876543210"  # what served last week'],
        ["      version: 0123456789ab"])
    assert summary.startswith(f"digits: promoted {CANARY}, which now serves every request")


def test_rollback_pins_the_stable_version_with_its_own_quoting():
    after, summary = rollback_text(WITH_CANARY, "digits")
    assert after == ROLLED_BACK
    assert summary == (f"digits: rolled back to {STABLE}, which now serves every request (pinned as version); the "
                       "canary (10% of requests) is gone")


def test_a_flow_canary_on_the_last_model_keeps_the_comments_that_end_the_file():
    after, _ = rollback_text(WITH_CANARY, "ranker")
    assert after == WITH_CANARY.replace(
        "      canary: {trafficPercent: 5, stableVersion: 00aa00aa00aa}  # flow style\n",
        "      version: 00aa00aa00aa\n")


def test_start_canary_puts_a_flow_canary_where_the_pin_was():
    after, summary = start_canary_text(ROLLED_BACK, "digits", CANARY, 20)
    assert after == ROLLED_BACK.replace('      version: "ba9876543210"\n',
                                        '      canary: {trafficPercent: 20, stableVersion: "ba9876543210"}\n')
    assert summary == (f"digits: {CANARY} runs as a canary on 20% of requests; {STABLE} keeps the rest until "
                       "`aip promote` or `aip rollback`")


def test_promote_then_start_canary_round_trips_to_a_one_line_canary():
    promoted, _ = promote_text(WITH_CANARY, "digits", CANARY)
    restarted, _ = start_canary_text(promoted, "digits", "ffff00001111")
    assert changed_lines(promoted, restarted) == (["      version: 0123456789ab"],
                                                  ["      canary: {trafficPercent: 10, stableVersion: 0123456789ab}"])


@pytest.mark.parametrize(("version", "written"), [
    ("123456789012", '"123456789012"'),  # an integer to every YAML reader
    ("1234e5678901", '"1234e5678901"'),  # a float to YAML 1.2 readers (the Pulumi CLI's)
    ("abcdef012345", "abcdef012345"),
])
def test_a_version_a_reader_would_not_take_for_a_string_is_quoted(version, written):
    after, _ = promote_text(WITH_CANARY, "digits", version)
    assert f"      version: {written}\n" in after


TEAM_STACKS = sorted(p for p in (ROOT / "stacks").glob("Pulumi.*.yaml") if "ai-platform:team:" in p.read_text())


@pytest.mark.parametrize("path", TEAM_STACKS, ids=[p.name for p in TEAM_STACKS])
def test_every_shipped_team_stack_can_be_edited_without_touching_other_lines(path: Path):
    # The edit refuses files it cannot write back unchanged: the shipped team stacks must not be among them.
    shipped = path.read_text()
    name = shipped.split("    - name: ", 1)[1].split("\n", 1)[0]
    pinned = shipped.replace(f"    - name: {name}\n", f"    - name: {name}\n      version: {STABLE}\n", 1)
    after, _ = start_canary_text(pinned, name, CANARY)
    assert changed_lines(pinned, after) == ([f"      version: {STABLE}"],
                                            [f"      canary: {{trafficPercent: 10, stableVersion: {STABLE}}}"])
    assert rollback_text(after, name)[0] == pinned


REFUSALS = [
    (lambda: promote_text(WITH_CANARY, "mnist", CANARY),
     "stack file: ai-platform:models has no model 'mnist' (models: digits, ranker)"),
    (lambda: promote_text(ROLLED_BACK, "digits", CANARY),
     f"stack file: digits (ai-platform:models[0]) has no canary; it serves {STABLE} (its version pin): nothing to "
     "promote"),
    (lambda: rollback_text(ROLLED_BACK, "digits"),
     f"stack file: digits (ai-platform:models[0]) has no canary; it serves {STABLE} (its version pin): nothing to "
     "roll back"),
    (lambda: promote_text(WITH_CANARY, "digits", STABLE),
     f"stack file: ai-platform:models[0].canary.stableVersion is {STABLE} already: the canary ran the stable version, "
     "so there is nothing to promote (was the canary's version packaged here? pass it with --version)"),
    (lambda: promote_text(WITH_CANARY, "digits", "v1.2"),
     "the canary's version 'v1.2' is not a packaged version: 12 to 64 lowercase hex characters, as `aip package` "
     "prints it"),
    (lambda: start_canary_text(WITH_CANARY, "digits", CANARY),
     f"stack file: digits (ai-platform:models[0]) has a canary already (stable version {STABLE}): promote it or roll "
     "it back first (`aip promote` / `aip rollback`)"),
    (lambda: start_canary_text(WITH_CANARY.replace("      canary:\n        trafficPercent: 10\n        stableVersion: "
                                                   '"ba9876543210"  # what served last week\n', ""), "digits", CANARY),
     "stack file: digits (ai-platform:models[0]) has no version pin, so the stack file does not say which version it "
     "serves now: pin it first (`version: <hex>`, the version in the team stack's `models` output), then start the "
     "canary"),
    (lambda: promote_text("config:\n  ai-platform:models: [\n", "digits", CANARY),
     "stack file: not valid YAML: expected the node content, but found '<stream end>' (line 3, column 1)"),
    (lambda: promote_text("config:\n  a: 1\n  a: 2\n", "digits", CANARY),
     'stack file: not valid YAML: found duplicate key "a" with value "2" (original value: "1") (line 3, column 3)'),
    (lambda: promote_text("config:\n  aws:region: us-east-1\n", "digits", CANARY),
     "stack file: ai-platform:models lists no models, so there is no model 'digits' (is it a team stack?)"),
    (lambda: promote_text("- config\n", "digits", CANARY), "stack file: expected a mapping with a `config:` mapping"),
    (lambda: rollback_text("config:\n      ai-platform:models:\n  - name: digits\n", "digits"),
     "stack file: not valid YAML"),
]


@pytest.mark.parametrize(("edit", "message"), REFUSALS, ids=[m[:60] for _, m in REFUSALS])
def test_states_that_do_not_allow_the_edit_are_refused_with_the_reason(edit, message):
    with pytest.raises(StackEditError) as refused:
        edit()
    assert str(refused.value).startswith(message)


def test_a_layout_ruamel_cannot_reproduce_is_refused_not_reformatted():
    odd = WITH_CANARY.replace("  aws:region: us-east-1\n", "  aws:region:   us-east-1\n")
    with pytest.raises(StackEditError, match=r"ruamel\.yaml cannot write this file back without changing lines the "
                                             r"edit does not touch"):
        rollback_text(odd, "digits")


def test_the_pinned_version_is_already_served_so_there_is_nothing_to_roll_out():
    with pytest.raises(NothingToRollOut, match=f"serves {STABLE} already \\(its version pin\\): nothing to roll out"):
        start_canary_text(ROLLED_BACK, "digits", STABLE)


def test_files_are_validated_before_they_are_written(tmp_path: Path):
    (tmp_path / "Pulumi.yaml").write_text((ROOT / "Pulumi.yaml").read_text())
    (tmp_path / "stacks").mkdir()
    stack = tmp_path / "stacks" / "Pulumi.vision-prod.yaml"
    broken = WITH_CANARY.replace('stableVersion: "ba9876543210"', 'stableVersion: "last-week"')
    stack.write_text(broken)
    with pytest.raises(StackEditError) as refused:
        rollback(stack, "digits")
    assert str(refused.value) == (
        "stacks/Pulumi.vision-prod.yaml: the edited file would not be a valid stack config, so it was not written:\n"
        '  - ai-platform:models[0].version = "last-week": must match ^[0-9a-f]{12,64}$')
    assert stack.read_text() == broken
    assert [p.name for p in stack.parent.iterdir()] == ["Pulumi.vision-prod.yaml"]


def test_a_file_edit_writes_the_result_and_keeps_the_file_mode(tmp_path: Path):
    (tmp_path / "Pulumi.yaml").write_text((ROOT / "Pulumi.yaml").read_text())
    (tmp_path / "stacks").mkdir()
    stack = tmp_path / "stacks" / "Pulumi.vision-prod.yaml"
    stack.write_text(WITH_CANARY)
    stack.chmod(0o640)
    edit = promote(stack, "digits", lambda: CANARY)
    assert stack.read_text() == PROMOTED == edit.after
    assert stack.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in stack.parent.iterdir()] == ["Pulumi.vision-prod.yaml"]
    assert edit.diff("stacks/Pulumi.vision-prod.yaml").splitlines()[:3] == [
        "--- stacks/Pulumi.vision-prod.yaml (before)", "+++ stacks/Pulumi.vision-prod.yaml", "@@ -11,9 +11,7 @@"]


def test_the_version_is_looked_up_only_once_the_model_and_its_canary_are_found(tmp_path: Path):
    def not_packaged() -> str:
        raise StackEditError("digits is not packaged")

    with pytest.raises(StackEditError, match="has no model 'mnist'"):
        promote_text(WITH_CANARY, "mnist", not_packaged)
    with pytest.raises(StackEditError, match="digits is not packaged"):
        promote_text(WITH_CANARY, "digits", not_packaged)


@pytest.mark.parametrize(("name", "dress", "undress"), [
    ("CRLF line endings", lambda t: t.replace("\n", "\r\n"), lambda t: t.replace("\r\n", "\n")),
    ("a byte order mark", lambda t: "\ufeff" + t, lambda t: t.removeprefix("\ufeff")),
    ("no final newline", lambda t: t.removesuffix("\n"), lambda t: t + "\n"),
    ("a document start marker", lambda t: "---\n" + t, lambda t: t.removeprefix("---\n")),
    ("all of them", lambda t: "\ufeff---\r\n" + t.replace("\n", "\r\n").removesuffix("\r\n"),
     lambda t: t.removeprefix("\ufeff---\r\n").replace("\r\n", "\n") + "\n"),
])
def test_an_editors_file_form_is_kept_not_refused(name, dress, undress):
    for edit, expected in ((lambda t: rollback_text(t, "digits"), ROLLED_BACK),
                           (lambda t: promote_text(t, "digits", CANARY), PROMOTED)):
        after, _ = edit(dress(WITH_CANARY))
        assert after == dress(expected), name
        assert undress(after) == expected
    restarted, _ = start_canary_text(dress(ROLLED_BACK), "digits", CANARY)
    assert undress(restarted) == start_canary_text(ROLLED_BACK, "digits", CANARY)[0]


@pytest.mark.parametrize(("text", "message"), [
    (WITH_CANARY.replace("\n", "\r\n", 3),
     "stack file: mixes CRLF and LF line endings; give every line the same ending first"),
    (WITH_CANARY.replace("\n", "\r"),
     "stack file: has a carriage return that ends no CRLF line; save it with LF or CRLF line endings first"),
    (WITH_CANARY.replace("  aws:region: us-east-1\n", "  aws:region: us-east-1   \n"),
     "stack file: ruamel.yaml cannot write this file back without changing lines the edit does not touch (unusual "
     "indentation, line endings or layout); line 3 '  aws:region: us-east-1   ' would become '  aws:region: "
     "us-east-1'; make the change by hand"),
    (WITH_CANARY.replace("    - name: ranker\n", "    - name: digits\n"),
     "stack file: ai-platform:models lists digits 2 times (ai-platform:models[0], ai-platform:models[1]): keep one"),
    (WITH_CANARY + "  models: []\n",
     "stack file: sets both ai-platform:models and models, which are one key to Pulumi: keep one"),
], ids=["mixed-endings", "lone-cr", "trailing-spaces", "duplicate-model", "both-model-keys"])
def test_a_file_the_edit_cannot_keep_as_it_is_is_refused_naming_what(text: str, message: str):
    for edit in (lambda: rollback_text(text, "digits"), lambda: promote_text(text, "digits", CANARY)):
        with pytest.raises(StackEditError) as refused:
            edit()
        assert str(refused.value) == message


@pytest.mark.parametrize("version", [CANARY + "\n", " " + CANARY, "", "../" + CANARY, "a" * 5000])
def test_a_version_is_the_whole_string_and_a_long_one_is_cut_in_the_message(version: str):
    with pytest.raises(StackEditError) as refused:
        promote_text(WITH_CANARY, "digits", version)
    assert "is not a packaged version" in str(refused.value)
    assert len(str(refused.value)) < 250
    with pytest.raises(StackEditError, match="is not a packaged version"):
        start_canary_text(ROLLED_BACK, "digits", version)


def test_a_canary_that_is_no_mapping_is_named_without_a_stable_version_of_none():
    with pytest.raises(StackEditError) as refused:
        start_canary_text(WITH_CANARY.replace("      canary:\n        trafficPercent: 10\n        stableVersion: "
                                              '"ba9876543210"  # what served last week\n', "      canary: yes\n"),
                          "digits", CANARY)
    assert str(refused.value) == ("stack file: digits (ai-platform:models[0]) has a canary already: promote it or "
                                  "roll it back first (`aip promote` / `aip rollback`)")


def project_with(tmp_path: Path, text: str) -> Path:
    (tmp_path / "Pulumi.yaml").write_text((ROOT / "Pulumi.yaml").read_text())
    (tmp_path / "stacks").mkdir()
    stack = tmp_path / "stacks" / "Pulumi.vision-prod.yaml"
    stack.write_text(text)
    return stack


def test_a_linked_stack_file_is_edited_where_it_lies_and_stays_a_link(tmp_path: Path):
    real = tmp_path / "elsewhere" / "vision-prod.yaml"
    real.parent.mkdir()
    real.write_text(WITH_CANARY)
    stack = project_with(tmp_path, "")
    stack.unlink()
    stack.symlink_to(real)
    rollback(stack, "digits")
    assert stack.is_symlink() and stack.resolve() == real.resolve()
    assert real.read_text() == ROLLED_BACK
    assert sorted(p.name for p in real.parent.iterdir()) == ["vision-prod.yaml"]


def test_a_read_only_stack_file_is_refused_and_left_alone(tmp_path: Path):
    stack = project_with(tmp_path, WITH_CANARY)
    stack.chmod(0o444)
    with pytest.raises(StackEditError, match=r"^stacks/Pulumi\.vision-prod\.yaml: is read-only, so it was not "
                                             r"edited"):
        rollback(stack, "digits")
    assert stack.read_text() == WITH_CANARY and stack.stat().st_mode & 0o777 == 0o444


def test_a_failed_write_is_one_message_and_leaves_the_file_and_no_scraps(tmp_path: Path, monkeypatch):
    stack = project_with(tmp_path, WITH_CANARY)

    def full_disk(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("infra.delivery.stack_edit.os.replace", full_disk)
    with pytest.raises(StackEditError) as refused:
        rollback(stack, "digits")
    assert str(refused.value) == ("stacks/Pulumi.vision-prod.yaml: cannot be written, so it was left as it was: No "
                                  "space left on device")
    assert stack.read_text() == WITH_CANARY
    assert [p.name for p in stack.parent.iterdir()] == ["Pulumi.vision-prod.yaml"]


def test_a_result_the_stack_reader_refuses_is_named_by_the_stack_file_not_a_scratch_copy(tmp_path: Path):
    stack = project_with(tmp_path, WITH_CANARY.replace('stableVersion: "ba9876543210"',
                                                       "stableVersion: !custom ba9876543210"))
    with pytest.raises(StackEditError) as refused:
        rollback(stack, "digits")
    assert str(refused.value).startswith("stacks/Pulumi.vision-prod.yaml: the edited file would not be a valid stack "
                                         "file, so it was not written: stacks/Pulumi.vision-prod.yaml: not valid YAML")
    assert str(tmp_path) not in str(refused.value) and "/tmp" not in str(refused.value)
