"""No policy raises, whatever shape a resource's properties take.

A policy that raises fails the whole policy gate instead of reporting a violation, and stack config and
hand-written resources can carry anything. Starting from one resource per type of the shipped ``dev`` and
``prod`` previews, platform and team stacks (props decoded as the analyzer decodes them, in its read-only
proxies), each key path is replaced by each hostile value, or removed; every resource policy runs on the
result, with the pack config of the environment, and every stack policy over the stack with it in place of
the original (a stack policy that never reads the resource's props is left out: they cannot change it).

The paths: every one down to depth 3 (dict keys and a list's first item); every path a policy reads on the
shipped resource, at any depth, and inside JSON documents held in strings (bucket policies, SLM policies);
and every path of the types the GPU, Karpenter, KEDA, NVIDIA sharing and S3 replication policies judge.

Unknown values (preview) may raise ``UnknownValueError``: the engine reports that as "can't run during
preview" by design. Any other exception is a defect.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import pytest
from pulumi_policy import (
    Policy,
    PolicyResource,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError, unknown_checking_proxy

from infra.preview import PreviewResult, ResourceRecord
from policies.aws.eks.nodegroups import NODE_GROUP
from policies.aws.s3.bucket_replication import REPLICATION
from policies.aws.s3.buckets import BUCKET
from policies.kubernetes.core.team_namespace_resource_quota import RESOURCE_QUOTA
from policies.kubernetes.core.team_namespaces import NAMESPACE
from policies.kubernetes.karpenter.nodepools import NODE_POOL
from policies.kubernetes.keda.scaledobject_floor import SCALED_OBJECT
from policies.registry import ALL_POLICIES
from tests.policies.test_shipped_stacks import decoded, options_of, policy_config

pytestmark = pytest.mark.integration

# The dev and prod platform stacks, and a team stack of each (models, autoscaling, serving runtimes).
STACKS = ("dev", "vision-dev", "prod", "vision-prod")
DELETE = object()
# "²" is a digit to str.isdigit() but not to int().
HOSTILE: tuple[Any, ...] = (None, "", "abc", "4Gi", "²", -1.0, float("nan"), float("inf"), [], {}, 10**12, True,
                            UNKNOWN_STRING_VALUE, DELETE)
MAX_DEPTH = 3
# Types the Karpenter, KEDA, NVIDIA sharing, GPU budget and quota, and S3 replication policies judge.
FULLY_WALKED = frozenset({NODE_POOL, SCALED_OBJECT, NODE_GROUP, RESOURCE_QUOTA, NAMESPACE, REPLICATION, BUCKET})
RESOURCE_POLICIES = [p for p in ALL_POLICIES if isinstance(p, ResourceValidationPolicy)]
STACK_POLICIES = [p for p in ALL_POLICIES if isinstance(p, StackValidationPolicy)]


class _Json:
    """A path step into the JSON document a string holds."""

    def __repr__(self) -> str:
        return "<json>"


JSON = _Json()
Step = str | int | _Json
Path = tuple[Step, ...]


def json_document(value: Any) -> Any:
    """The object or array a string holds as JSON; None for any other value."""
    if not isinstance(value, str) or not value.lstrip().startswith(("{", "[")):
        return None
    try:
        document = json.loads(value)
    except ValueError:
        return None
    return document if isinstance(document, dict | list) else None


def paths(value: Any, max_depth: int | None, prefix: Path = ()) -> Iterator[Path]:
    """Key paths of a plain value (dict keys, a list's first item, into JSON strings), down to ``max_depth``."""
    if max_depth is not None and len(prefix) >= max_depth:
        return
    document = json_document(value)
    if document is not None:
        yield from paths(document, max_depth, (*prefix, JSON))
        return
    if isinstance(value, dict):
        children: list[tuple[Step, Any]] = sorted(value.items())
    elif isinstance(value, list) and value:
        children = [(0, value[0])]
    else:
        return
    for key, child in children:
        yield (*prefix, key)
        yield from paths(child, max_depth, (*prefix, key))


def replaced(value: Any, path: Path, new: Any) -> Any:
    """A copy of ``value`` with ``path`` set to ``new`` (or removed, for DELETE); only the path is copied."""
    head, rest = path[0], path[1:]
    if head is JSON:
        return json.dumps(replaced(json.loads(value), rest, new) if rest else new)
    copy: Any = dict(value) if isinstance(value, dict) else list(value)
    if rest:
        copy[head] = replaced(copy[head], rest, new)
    elif new is DELETE:
        if isinstance(copy, list):
            del copy[head]
        else:
            copy.pop(head, None)
    else:
        copy[head] = new
    return copy


class _Reads:
    """What policies read of one resource's props: the paths, and whether they touched them at all."""

    def __init__(self) -> None:
        self.paths: set[Path] = set()
        self.touched = False

    def saw(self, path: Path) -> None:
        self.touched = True
        if path:
            self.paths.add(path)


class _RecordingMapping(Mapping):
    def __init__(self, target: Mapping, path: Path, reads: _Reads) -> None:
        self._target, self._path, self._reads = target, path, reads

    def __getitem__(self, key: Any) -> Any:
        self._reads.saw((*self._path, key))
        return _recording(self._target[key], (*self._path, key), self._reads)

    def __iter__(self) -> Iterator[Any]:
        self._reads.saw(self._path)
        return iter(self._target)

    def __len__(self) -> int:
        self._reads.saw(self._path)
        return len(self._target)


class _RecordingSequence(Sequence):
    def __init__(self, target: Sequence, path: Path, reads: _Reads) -> None:
        self._target, self._path, self._reads = target, path, reads

    def __getitem__(self, index: Any) -> Any:
        if not isinstance(index, int):
            self._reads.saw(self._path)
            return self._target[index]
        self._reads.saw((*self._path, index))
        return _recording(self._target[index], (*self._path, index), self._reads)

    def __len__(self) -> int:
        self._reads.saw(self._path)
        return len(self._target)


def _recording(value: Any, path: Path, reads: _Reads) -> Any:
    if isinstance(value, Mapping):
        return _RecordingMapping(value, path, reads)
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return _RecordingSequence(value, path, reads)
    return value


def plain(record: ResourceRecord, which: str) -> dict[str, Any]:
    """The record's props as the analyzer decodes them, as plain dicts and lists."""
    return _unwrap(decoded(record, which))


def _unwrap(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _unwrap(value[key]) for key in value}
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [_unwrap(v) for v in value]
    return value


def representatives(result: PreviewResult) -> list[ResourceRecord]:
    """The resource of each type with the most to mutate (the largest), so the richest shape is walked."""
    best: dict[str, ResourceRecord] = {}
    for record in (r for r in result.resources if r.custom):
        current = best.get(record.type)
        if current is None or _size(record) > _size(current):
            best[record.type] = record
    return [best[t] for t in sorted(best)]


def _size(record: ResourceRecord) -> tuple[int, str]:
    return len(json.dumps(record.inputs, default=str, sort_keys=True)), record.name


def _readable(path: Path) -> Path:
    """A read path as a mutation path: list items beyond the first are mutated through the first."""
    return tuple(0 if isinstance(step, int) else step for step in path)


def mutation_paths(base: dict[str, Any], resource_type: str, reads: _Reads) -> list[Path]:
    """The paths of ``base`` to mutate, sorted, each once: existing ones, and absent keys a policy looks up."""
    found = set(paths(base, None if resource_type in FULLY_WALKED else MAX_DEPTH))
    for read in map(_readable, reads.paths):
        found.update(read[:end] for end in range(1, len(read) + 1))
        if _exists(base, read):
            # A policy that parses a JSON string reads what is inside it without the props telling.
            found.update((*read, *inner) for inner in paths(_at(base, read), None) if inner[0] is JSON)
    return sorted((p for p in found if _exists(base, p) or isinstance(_parent(base, p), dict)),
                  key=lambda p: [str(s) for s in p])


def _parent(value: Any, path: Path) -> Any:
    return _at(value, path[:-1]) if _exists(value, path[:-1]) else None


def _at(value: Any, path: Path) -> Any:
    for step in path:
        value = json.loads(value) if step is JSON else value[step]
    return value


def _exists(value: Any, path: Path) -> bool:
    try:
        _at(value, path)
    except (KeyError, IndexError, TypeError, ValueError):
        return False
    return True


def show(value: Any) -> str:
    if value is DELETE:
        return "<deleted>"
    if value == UNKNOWN_STRING_VALUE:
        return "<unknown>"
    return "nan" if isinstance(value, float) and math.isnan(value) else repr(value)


def ignore(message: str, urn: str | None = None) -> None:
    del message, urn


def failure(run: Callable[[], None]) -> Exception | None:
    """What running one policy raised (unknown values aside), or None."""
    try:
        run()
    except UnknownValueError:
        return None
    except Exception as error:  # any exception is what this test looks for
        return error
    return None


def place(error: Exception) -> str:
    """Where in the pack an exception was raised: its innermost frame."""
    tb = error.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return f"{tb.tb_frame.f_code.co_filename.rsplit('/', 1)[-1]}:{tb.tb_lineno}" if tb else "?"


class Judge:
    """Runs the pack's policies on one environment's stack with one resource's props replaced."""

    def __init__(self, result: PreviewResult, stack: str) -> None:
        self.custom = [r for r in result.resources if r.custom]
        self.configs = {p.name: policy_config(stack, p.name) for p in ALL_POLICIES}
        self.stack = [self._resource(r, decoded(r, "output")) for r in self.custom]
        self.failures: dict[str, str] = {}

    @staticmethod
    def _resource(record: ResourceRecord, props: Any) -> PolicyResource:
        return PolicyResource(record.type, props, record.urn, record.name, options_of(record), None, None, [], {})

    def resource_run(self, policy: Policy, record: ResourceRecord, props: Any) -> Callable[[], None]:
        args = ResourceValidationArgs(record.type, props, record.urn, record.name, options_of(record), None,
                                      self.configs[policy.name])
        return lambda: policy.validate(args, ignore)

    def stack_run(self, policy: Policy, record: ResourceRecord, props: Any) -> Callable[[], None]:
        index = self.custom.index(record)
        resources = [*self.stack[:index], self._resource(record, props), *self.stack[index + 1:]]
        args = StackValidationArgs(resources, self.configs[policy.name])
        return lambda: policy.validate(args, ignore)

    def reads(self, policies: list[Policy], record: ResourceRecord, which: str) -> dict[str, _Reads]:
        """What each policy reads of the unchanged resource."""
        run = self.resource_run if which == "input" else self.stack_run
        found = {}
        for policy in policies:
            found[policy.name] = _Reads()
            props = _recording(unknown_checking_proxy(plain(record, which)), (), found[policy.name])
            error = failure(run(policy, record, props))
            assert error is None, f"{policy.name} fails on the shipped {record.name}: {error!r}"
        return found

    def mutate_all(self, record: ResourceRecord, which: str) -> None:
        """Every hostile value at every path of one resource's inputs (resource policies) or outputs (stack)."""
        policies, run = ((RESOURCE_POLICIES, self.resource_run) if which == "input"
                         else (STACK_POLICIES, self.stack_run))
        reads = self.reads(policies, record, which)
        every = _Reads()
        for read in reads.values():
            every.paths |= read.paths
        # A policy that never looks at this resource's props behaves the same whatever they hold.
        involved = [p for p in policies if which == "input" or reads[p.name].touched]
        base = plain(record, which)
        for path in mutation_paths(base, record.type, every):
            for value in HOSTILE:
                props = unknown_checking_proxy(replaced(base, path, value))
                for policy in involved:
                    error = failure(run(policy, record, props))
                    if error is not None:
                        where = f"{record.type} '{record.name}' {which}s {_show_path(path)}={show(value)}"
                        self.failures.setdefault(f"{type(error).__name__} at {place(error)}",
                                                 f"{policy.name} on {where}: {error}")


def _show_path(path: Path) -> str:
    return ".".join("<json>" if step is JSON else str(step) for step in path)


@pytest.mark.parametrize("stack", STACKS)
def test_no_policy_raises_on_hostile_props(stack: str, preview: Callable[[str], PreviewResult]) -> None:
    result = preview(stack)
    judge = Judge(result, stack)
    for record in representatives(result):
        judge.mutate_all(record, "input")
        judge.mutate_all(record, "output")
    assert judge.failures == {}, "\n".join(f"{k}\n    {v}" for k, v in sorted(judge.failures.items()))
