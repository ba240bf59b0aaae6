"""Promotion, rollback and the start of a canary, as edits of a team stack file made the way a person would make them.

A model with a canary serves two versions: `canary.stableVersion` keeps most requests, and the version `aip
package` built runs as the canary (infra/components/inference_service.py). The edits move a model between that
state and a *pinned* one, where `version:` names the one version it serves (ModelDeployment.version):

- promote: the canary's version becomes the stable one. The `canary` block gives way to `version: <canary's
  version>`, so the deploy serves that version to all traffic and keeps serving it when the next commit packages
  something else (until the next canary).
- rollback: the `canary` block gives way to `version: <stableVersion>`. A pinned version other than the packaged
  one is deployed from the model store, where an earlier deploy left it (uploads are content-addressed and
  retained): nothing is rebuilt or uploaded.
- start a canary: `version: <pin>` gives way to `canary: {trafficPercent: N, stableVersion: <pin>}`, so the next
  deploy runs the packaged version beside it.

Each edit round-trips the file through ruamel.yaml: comments, key order, quoting and flow style stay, and only the
lines of the changed key differ (checked before writing; a file whose layout ruamel.yaml cannot reproduce is
refused instead of reformatted). The result must pass the same config parser as `aip preview` before it replaces
the file, atomically. https://yaml.dev/doc/ruamel.yaml/detail/
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import io
import os
import re
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml as pyyaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark, YAMLError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString
from ruamel.yaml.tokens import CommentToken

from infra.delivery.text import shown

DEFAULT_TRAFFIC_PERCENT = 10
PROJECT = "ai-platform"
# The form `aip package` gives versions (infra/serving/manifest.py PackagedModel.version).
_VERSION = re.compile(r"^[0-9a-f]{12,64}$")
# Indentation (mapping, sequence, dash offset) tried in turn: the first one that reproduces the file byte for byte
# is the file's. The shipped stack files use the first.
_LAYOUTS = ((2, 4, 2), (2, 2, 0), (4, 6, 4), (4, 4, 0), (4, 6, 2), (2, 4, 0))


# A version, or a function that finds it (and raises StackEditError when it cannot).
Version = str | Callable[[], str]
_BOM = "\ufeff"


class StackEditError(Exception):
    """The edit is refused and the file left as it was; the message says why and what to do."""


class NothingToRollOut(StackEditError):
    """The model already serves the packaged version: there is nothing for a canary to compare."""


@dataclasses.dataclass(frozen=True)
class StackEdit:
    """One edit of a stack file.

    Attributes:
        path: The stack file.
        model: The model edited.
        before: The file's text before.
        after: The file's text after (what was written).
        summary: One sentence: what the model serves now.
    """

    path: Path
    model: str
    before: str
    after: str
    summary: str

    def diff(self, label: str | None = None) -> str:
        """The change as a unified diff, with ``label`` (default: the path) as the file's name."""
        name = label or str(self.path)
        return "".join(difflib.unified_diff(self.before.splitlines(keepends=True), self.after.splitlines(keepends=True),
                                            fromfile=f"{name} (before)", tofile=name))


def promote(stack_file: Path, model: str, version: Version) -> StackEdit:
    """Make the canary's ``version`` (the packaged one it ran) the model's stable version and end the canary.

    ``version`` may be a function that finds it (in the package manifest): it is asked only once the file, the model
    and its canary are known to be there, so those problems are reported first.
    """
    return _apply(stack_file, model, lambda text, source: promote_text(text, model, version, source=source))


def rollback(stack_file: Path, model: str) -> StackEdit:
    """End the model's canary and pin its `stableVersion`, which then serves every request."""
    return _apply(stack_file, model, lambda text, source: rollback_text(text, model, source=source))


def start_canary(stack_file: Path, model: str, version: Version,
                 traffic_percent: int = DEFAULT_TRAFFIC_PERCENT) -> StackEdit:
    """Run the packaged ``version`` as a canary on ``traffic_percent`` of the requests beside the pinned version.

    Raises:
        NothingToRollOut: the pinned version is ``version`` already.
        StackEditError: for every other state that does not allow it.
    """
    return _apply(stack_file, model,
                  lambda text, source: start_canary_text(text, model, version, traffic_percent, source=source))


def _in_file_form(edit: Callable[..., tuple[str, str]]) -> Callable[..., tuple[str, str]]:
    """Run a text edit on the text as ruamel.yaml writes it (LF line endings, no byte order mark, a final newline)
    and give the result the file's own form back: an editor's choice of these is no reason to refuse the edit."""

    @functools.wraps(edit)
    def in_form(text: str, *args: Any, source: str = "stack file", **kwargs: Any) -> tuple[str, str]:
        bom = text.startswith(_BOM)
        body = text.removeprefix(_BOM)
        crlf = "\r\n" in body
        if crlf and body.count("\n") != body.count("\r\n"):
            raise StackEditError(f"{source}: mixes CRLF and LF line endings; give every line the same ending first")
        body = body.replace("\r\n", "\n")
        if "\r" in body:
            raise StackEditError(f"{source}: has a carriage return that ends no CRLF line; save it with LF or CRLF "
                                 "line endings first")
        final_newline = body.endswith("\n") or not body
        after, summary = edit(body if final_newline else body + "\n", *args, source=source, **kwargs)
        if not final_newline:
            after = after.removesuffix("\n")
        if crlf:
            after = after.replace("\n", "\r\n")
        return (_BOM if bom else "") + after, summary

    return in_form


@_in_file_form
def promote_text(text: str, model: str, version: Version, *, source: str = "stack file",
                 project: str = PROJECT) -> tuple[str, str]:
    """The text with ``model``'s canary promoted, and a summary; StackEditError when the state does not allow it."""
    yaml, doc = _round_trip(text, source)
    entry, where = _model_entry(doc, model, source, project)
    canary = _canary(entry, where, "promote", source)
    version = _resolve(version, "the canary's version")
    stable = canary.get("stableVersion")
    if str(stable) == version:
        raise StackEditError(f"{source}: {where}.canary.stableVersion is {version} already: the canary ran the stable "
                             "version, so there is nothing to promote (was the canary's version packaged here? pass "
                             "it with --version)")
    line = _replace_key(entry, "canary", "version", _version_scalar(version))
    after = _dump(yaml, doc, text, line, "canary", source)
    replaced = "the canary is gone" if stable is None else f"the canary and its stable version {stable} are gone"
    return after, f"{model}: promoted {version}, which now serves every request (pinned as version); {replaced}"


@_in_file_form
def rollback_text(text: str, model: str, *, source: str = "stack file", project: str = PROJECT) -> tuple[str, str]:
    """The text with ``model``'s canary rolled back, and a summary; StackEditError when the state does not allow it."""
    yaml, doc = _round_trip(text, source)
    entry, where = _model_entry(doc, model, source, project)
    canary = _canary(entry, where, "roll back", source)
    stable = canary.get("stableVersion")
    if stable is None:
        raise StackEditError(f"{source}: {where}.canary has no stableVersion to roll back to")
    # The stable version's own scalar: its quoting stays as the person wrote it.
    line = _replace_key(entry, "canary", "version", stable)
    after = _dump(yaml, doc, text, line, "canary", source)
    percent = canary.get("trafficPercent")
    return after, (f"{model}: rolled back to {stable}, which now serves every request (pinned as version); the canary "
                   f"({percent}% of requests) is gone")


@_in_file_form
def start_canary_text(text: str, model: str, version: Version, traffic_percent: int = DEFAULT_TRAFFIC_PERCENT, *,
                      source: str = "stack file", project: str = PROJECT) -> tuple[str, str]:
    """The text with a canary of ``version`` beside ``model``'s pinned version, and a summary."""
    yaml, doc = _round_trip(text, source)
    entry, where = _model_entry(doc, model, source, project)
    if entry.get("canary") is not None:
        stable = entry["canary"].get("stableVersion") if isinstance(entry["canary"], dict) else None
        running = f" (stable version {stable})" if stable is not None else ""
        raise StackEditError(f"{source}: {model} ({where}) has a canary already{running}: promote it or roll it back "
                             "first (`aip promote` / `aip rollback`)")
    if entry.get("runtime") == "kserve":
        raise StackEditError(f"{source}: {model} ({where}) runs the kserve runtime, whose version is its image: "
                             "canaries are for torchserve models")
    pinned = entry.get("version")
    if pinned is None:
        raise StackEditError(f"{source}: {model} ({where}) has no version pin, so the stack file does not say which "
                             "version it serves now: pin it first (`version: <hex>`, the version in the team stack's "
                             "`models` output), then start the canary")
    version = _resolve(version, "the packaged version")
    if str(pinned) == version:
        raise NothingToRollOut(f"{source}: {model} ({where}) serves {version} already (its version pin): nothing to "
                               "roll out")
    canary = CommentedMap()
    canary["trafficPercent"] = traffic_percent
    # The pinned version's own scalar: its quoting stays as it was written.
    canary["stableVersion"] = pinned
    canary.fa.set_flow_style()
    line = _replace_key(entry, "version", "canary", canary)
    after = _dump(yaml, doc, text, line, "version", source)
    return after, (f"{model}: {version} runs as a canary on {traffic_percent}% of requests; {pinned} keeps the rest "
                   "until `aip promote` or `aip rollback`")


def _apply(stack_file: Path, model: str, edit: Callable[[str, str], tuple[str, str]]) -> StackEdit:
    """Read, edit, validate, then replace the file atomically; nothing is written when any step refuses."""
    source = _display(stack_file)
    if not stack_file.is_file():
        raise StackEditError(f"{source}: no such stack file")
    # A stack file that is a link is edited where it lies: the rename replaces the link's target, not the link.
    target = stack_file.resolve()
    if not os.access(target, os.W_OK) or not target.stat().st_mode & stat.S_IWUSR:
        raise StackEditError(f"{source}: is read-only, so it was not edited; make it writable first if it is meant "
                             "to change")
    try:
        with target.open(encoding="utf-8", newline="") as handle:
            before = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise StackEditError(f"{source}: cannot be read: {exc}") from None
    after, summary = edit(before, source)
    _validate(stack_file, after, source)
    try:
        _write_atomically(target, after)
    except OSError as exc:
        raise StackEditError(f"{source}: cannot be written, so it was left as it was: {exc.strerror or exc}") from None
    return StackEdit(path=stack_file, model=model, before=before, after=after, summary=summary)


def _display(stack_file: Path) -> str:
    """The stack file as a person names it: relative to its project, when it is in one."""
    from infra.preview.project import Project, ProjectError

    try:
        root = Project.find(stack_file.parent).root
        return str(stack_file.resolve().relative_to(root))
    except (ProjectError, ValueError):
        return str(stack_file)


def _yaml(mapping: int, sequence: int, offset: int) -> YAML:
    yaml = YAML()
    yaml.preserve_quotes = True
    # Long lines stay as written: ruamel.yaml would otherwise fold them at 80 characters.
    yaml.width = 4096
    yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    return yaml


def _round_trip(text: str, source: str) -> tuple[YAML, Any]:
    """The parsed document and a YAML instance that writes it back exactly as it was read."""
    first_try = None
    for layout in _LAYOUTS:
        yaml = _yaml(*layout)
        # A file that opens with the document marker keeps it.
        yaml.explicit_start = text.startswith("---\n")
        try:
            doc = yaml.load(text)
        except YAMLError as exc:
            raise StackEditError(f"{source}: not valid YAML: {_yaml_problem(exc)}") from None
        if not isinstance(doc, CommentedMap):
            raise StackEditError(f"{source}: expected a mapping with a `config:` mapping")
        written = _to_text(yaml, doc)
        if written == text:
            return yaml, doc
        first_try = first_try or written
    raise StackEditError(f"{source}: ruamel.yaml cannot write this file back without changing lines the edit does "
                         f"not touch (unusual indentation, line endings or layout){_first_change(text, first_try)}; "
                         "make the change by hand")


def _first_change(before: str, after: str | None) -> str:
    """Where the file would first change, for the refusal: the line a person fixes, or edits by hand."""
    if after is None:
        return ""
    old, new = before.splitlines(), after.splitlines()
    line = next((i for i, (a, b) in enumerate(zip(old, new, strict=False)) if a != b), min(len(old), len(new)))
    was = shown(old[line]) if line < len(old) else "the end of the file"
    becomes = shown(new[line]) if line < len(new) else "nothing"
    return f"; line {line + 1} {was} would become {becomes}"


def _model_entry(doc: CommentedMap, model: str, source: str, project: str) -> tuple[CommentedMap, str]:
    """The model's entry under `<project>:models` and its key path (`ai-platform:models[0]`)."""
    config = doc.get("config")
    if not isinstance(config, CommentedMap):
        raise StackEditError(f"{source}: expected a mapping with a `config:` mapping")
    # The engine reads a key without namespace as the project's own.
    keys = [k for k in (f"{project}:models", "models") if k in config]
    if len(keys) > 1:
        raise StackEditError(f"{source}: sets both {keys[0]} and {keys[1]}, which are one key to Pulumi: keep one")
    key = keys[0] if keys else f"{project}:models"
    models = config.get(key)
    if not isinstance(models, CommentedSeq) or not models:
        raise StackEditError(f"{source}: {key} lists no models, so there is no model {shown(model)} (is it a team "
                             "stack?)")
    names = [str(entry.get("name")) for entry in models if isinstance(entry, CommentedMap)]
    found = [(index, entry) for index, entry in enumerate(models)
             if isinstance(entry, CommentedMap) and entry.get("name") == model]
    if len(found) > 1:
        raise StackEditError(f"{source}: {key} lists {model} {len(found)} times "
                             f"({', '.join(f'{key}[{i}]' for i, _ in found)}): keep one")
    if not found:
        raise StackEditError(f"{source}: {key} has no model {shown(model)} (models: {', '.join(names) or 'none'})")
    index, entry = found[0]
    return entry, f"{key}[{index}]"


def _canary(entry: CommentedMap, where: str, action: str, source: str) -> CommentedMap:
    canary = entry.get("canary")
    if canary is None:
        pinned = f"; it serves {entry['version']} (its version pin)" if entry.get("version") is not None else ""
        raise StackEditError(f"{source}: {entry.get('name')} ({where}) has no canary{pinned}: nothing to {action}")
    if not isinstance(canary, CommentedMap):
        raise StackEditError(f"{source}: {where}.canary must be a mapping with trafficPercent and stableVersion")
    if "version" in entry:
        raise StackEditError(f"{source}: {entry.get('name')} ({where}) sets both version and canary, which the "
                             "config does not allow: remove one by hand first")
    return canary


def _resolve(version: Version, what: str) -> str:
    found = version() if callable(version) else version
    if not _VERSION.fullmatch(found):
        raise StackEditError(f"{what} {shown(found)} is not a packaged version: 12 to 64 lowercase hex characters, "
                             "as `aip package` prints it")
    return found


def _version_scalar(version: str) -> Any:
    """A version as a plain scalar, quoted when a YAML reader would take it for something else than a string.

    An all-digit version is an integer to every reader, and `1234e5678901` is a float to YAML 1.2 readers such as
    the Pulumi CLI's, though not to PyYAML: both are asked.
    """
    safe_12 = YAML(typ="safe", pure=True)
    if isinstance(pyyaml.safe_load(version), str) and isinstance(safe_12.load(version), str):
        return version
    return DoubleQuotedScalarString(version)


def _replace_key(entry: CommentedMap, old: str, new: str, value: Any) -> int:
    """Put ``new: value`` where ``old`` was, and return the (0-based) line ``old`` was on. Full-line comments after
    ``old``'s block belong to what follows and stay; a comment at the end of ``old``'s own last line goes with it."""
    line = entry.lc.key(old)[0]
    following = _following_comments(entry, old)
    entry.insert(list(entry).index(old), new, value)
    del entry[old]
    entry.ca.items.pop(old, None)
    entry.ca.items.pop(new, None)
    if following:
        entry.ca.items[new] = [None, None, CommentToken("\n" + following, CommentMark(0), None), None]
    return line


def _following_comments(node: CommentedMap | CommentedSeq, key: Any) -> str:
    """The full-line comments (and blank lines) after the block of ``node[key]``.

    ruamel.yaml keeps them in the comment slot of the block's last scalar, however deep: after the end-of-line
    comment of that scalar's line, up to the first newline.
    """
    value = node[key]
    is_block = isinstance(value, CommentedMap | CommentedSeq) and len(value) and not value.fa.flow_style()
    if is_block:
        last = list(value)[-1] if isinstance(value, CommentedMap) else len(value) - 1
        return _following_comments(value, last)
    slot = node.ca.items.get(key)
    index = 2 if isinstance(node, CommentedMap) else 0
    token = slot[index] if slot and len(slot) > index else None
    if not isinstance(token, CommentToken) or "\n" not in token.value:
        return ""
    return token.value.split("\n", 1)[1]


def _to_text(yaml: YAML, doc: Any) -> str:
    out = io.StringIO()
    yaml.dump(doc, out)
    return out.getvalue()


def _dump(yaml: YAML, doc: Any, before: str, line: int, old: str, source: str) -> str:
    """The edited text; refused unless the changed lines are one hunk that starts at the replaced key's ``line``."""
    after = _to_text(yaml, doc)
    old_lines, new_lines = before.splitlines(keepends=True), after.splitlines(keepends=True)
    changed = [op for op in difflib.SequenceMatcher(None, old_lines, new_lines, autojunk=False).get_opcodes()
               if op[0] != "equal"]
    if len(changed) != 1 or changed[0][1] != line:
        raise StackEditError(f"{source}: the edit would change lines other than those of {old!r}; make the change by "
                             "hand")
    return after


def _validate(stack_file: Path, text: str, source: str) -> None:
    """Parse the edited text as `aip preview` and `pulumi up` would parse the stack file; StackEditError if not."""
    from infra.config import ConfigError, parse_stack_config
    from infra.preview.project import Project, ProjectError

    stack = stack_file.name.removeprefix("Pulumi.").removesuffix(".yaml")
    try:
        project = Project.find(stack_file.parent)
    except ProjectError as exc:
        raise StackEditError(f"{source}: cannot check the edit against the project's config: {exc}") from None
    with tempfile.TemporaryDirectory() as scratch:
        copy = dataclasses.replace(project, root=Path(scratch), stack_config_dir=Path(scratch))
        copy.stack_path(stack).write_text(text, encoding="utf-8")
        try:
            values = copy.stack_config(stack)
            parse_stack_config(values.values, project=project.name, stack=stack, secret_keys=values.secret_keys,
                               secure_paths=values.secure_paths)
        except ConfigError as exc:
            problems = "".join(f"\n  - {problem.render()}" for problem in exc.problems)
            raise StackEditError(f"{source}: the edited file would not be a valid stack config, so it was not "
                                 f"written:{problems}") from None
        except ProjectError as exc:
            # The problem is the edited text's: named by the scratch copy's path it would send a reader astray.
            problem = str(exc).replace(str(copy.stack_path(stack)), source)
            raise StackEditError(f"{source}: the edited file would not be a valid stack file, so it was not written: "
                                 f"{problem}") from None


def _write_atomically(path: Path, text: str) -> None:
    """Write beside the file, then rename over it: a reader sees the old file or the new one, never half of one."""
    handle, partial = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(partial, path.stat().st_mode & 0o7777)
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


def _yaml_problem(exc: YAMLError) -> str:
    """What the parser found and where, on one line."""
    problem, mark = getattr(exc, "problem", None), getattr(exc, "problem_mark", None)
    if problem and mark is not None:
        return f"{problem} (line {mark.line + 1}, column {mark.column + 1})"
    return " ".join(str(exc).split())
