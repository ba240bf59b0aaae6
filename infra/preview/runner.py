"""Runs the program Pulumi.yaml names as Pulumi's Python language host does, against a recording mock monitor."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import runpy
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
from google.protobuf import struct_pb2
from pulumi.runtime import rpc
from pulumi.runtime import settings as runtime_settings
from pulumi.runtime.config import set_all_config
from pulumi.runtime.mocks import MockEngine, MockMonitor
from pulumi.runtime.stack import run_in_stack

from infra.platform_outputs import PLATFORM_OUTPUT_KEYS
from infra.preview.lazy_imports import make_lazy_loading_thread_safe
from infra.preview.mocks import PreviewMocks
from infra.preview.project import Project, StackConfig


@dataclass(frozen=True)
class ResourceRecord:
    """One resource as the program registered it (engine-side property names)."""

    urn: str
    type: str
    name: str
    parent: str
    custom: bool
    inputs: dict[str, Any]
    options: dict[str, Any]
    # As the engine holds them: what a policy pack is given (inputs to resource policies, outputs to
    # stack policies).
    input_struct: struct_pb2.Struct = field(default_factory=struct_pb2.Struct, repr=False, compare=False)
    output_struct: struct_pb2.Struct = field(default_factory=struct_pb2.Struct, repr=False, compare=False)


@dataclass
class PreviewResult:
    """Everything an offline preview learned about a stack."""

    project: str
    stack: str
    resources: list[ResourceRecord]
    outputs: dict[str, Any]
    warnings: list[str] = field(default_factory=list)

    def of_type(self, type_token: str) -> list[ResourceRecord]:
        return [r for r in self.resources if r.type == type_token]


class ProgramError(Exception):
    """The program failed; ``cause`` is what it raised (a pulumi.RunError means a clean, expected failure).

    ``resources`` are those registered before the failure (none, for a config error).
    """

    def __init__(self, stack: str, cause: BaseException, resources: list[ResourceRecord] | None = None):
        super().__init__(str(cause))
        self.stack = stack
        self.cause = cause
        self.resources = resources or []


class _RecordingMonitor(MockMonitor):
    def __init__(self, mocks: PreviewMocks, on_resource: Callable[[ResourceRecord], None] | None):
        super().__init__(mocks)
        self.records: list[ResourceRecord] = []
        self._urns: set[str] = set()
        self.stack_outputs: dict[str, Any] = {}
        self._on_resource = on_resource

    def _record(self, request: Any, response: Any, read: bool) -> None:
        urn = response.urn
        raw = request.properties if read else request.object
        inputs = rpc.deserialize_properties(raw)
        options = {"protect": getattr(request, "protect", False),
                   "retainOnDelete": getattr(request, "retainOnDelete", False),
                   "deleteBeforeReplace": getattr(request, "deleteBeforeReplace", False),
                   "provider": request.provider or None,
                   "dependsOn": list(getattr(request, "dependencies", []) or []),
                   "ignoreChanges": list(getattr(request, "ignoreChanges", []) or []),
                   "read": read}
        outputs = response.properties if read else response.object
        record = ResourceRecord(urn=urn, type=request.type, name=request.name, parent=request.parent or "",
                                custom=bool(getattr(request, "custom", True)), inputs=inputs, options=options,
                                input_struct=raw, output_struct=outputs)
        self.records.append(record)
        self._urns.add(urn)
        if self._on_resource:
            self._on_resource(record)

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        if response.urn in self._urns:
            # The engine refuses a second resource with the same URN; the mocks alone would accept it.
            raise ValueError(f"Duplicate resource URN {response.urn!r}: give the resource a unique name")
        if request.type != "pulumi:pulumi:Stack":
            self._record(request, response, read=False)
        return response

    def ReadResource(self, request):
        response = super().ReadResource(request)
        self._record(request, response, read=True)
        return response

    def RegisterResourceOutputs(self, request):
        if request.urn.split("::")[2] == "pulumi:pulumi:Stack":
            self.stack_outputs = rpc.deserialize_properties(request.outputs)
        return super().RegisterResourceOutputs(request)


class _WarningCollector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def run_preview(stack: str, project: Project | None = None, *,
                on_resource: Callable[[ResourceRecord], None] | None = None,
                cache: dict[str, PreviewResult] | None = None, _visiting: tuple[str, ...] = ()) -> PreviewResult:
    """Preview ``stack`` offline.

    StackReferences to other stacks of this project resolve to the outputs of their own offline
    preview; references that cannot be previewed here get clearly fabricated outputs (and a warning).
    Pass the same ``cache`` to several calls to preview each referenced stack only once.

    Raises:
        ProjectError: the stack file is missing or unreadable.
        ProgramError: the program raised (config errors arrive as a pulumi.RunError cause).
    """
    project = project or Project.find()
    cache = {} if cache is None else cache
    config = project.stack_config(stack)
    resolved: dict[str, Mapping[str, Any]] = {}
    warnings_seen: list[str] = []

    def resolve(name: str) -> Mapping[str, Any]:
        if name in resolved:
            return resolved[name]
        local = _local_stack(name, project)
        if local is None or local in (*_visiting, stack):
            warnings_seen.append(f"stack reference {name!r} is not a stack of this project: outputs are fabricated")
            resolved[name] = fabricated_outputs(name, region=config.values.get("aws:region"))
        else:
            if local not in cache:
                try:
                    cache[local] = run_preview(local, project, cache=cache, _visiting=(*_visiting, stack))
                except ProgramError as exc:
                    if isinstance(exc.cause, pulumi.RunError):
                        # A stack this one reads is misconfigured: say so as a config error of its own.
                        raise pulumi.RunError(f"stack reference {name!r} cannot be read: {exc.cause}") from None
                    raise
            resolved[name] = cache[local].outputs
        return resolved[name]

    program_path = str(project.main)
    result = run_program(lambda: runpy.run_path(program_path, run_name="__main__"), project_name=project.name,
                         stack=stack, config=config, stack_outputs=resolve, on_resource=on_resource,
                         root_directory=str(project.root))
    result.warnings[:0] = warnings_seen
    return result


def _local_stack(reference: str, project: Project) -> str | None:
    parts = reference.split("/")
    if len(parts) == 3 and parts[1] != project.name:
        return None
    name = parts[-1]
    return name if project.stack_path(name).is_file() else None


def fabricated_outputs(reference: str, region: str | None = None) -> dict[str, Any]:
    """Stand-in platform outputs for a stack that cannot be previewed here, marked as fabricated; ``region`` (the
    referencing stack's) stands in for its region, which a team stack must share."""
    structured = {"privateSubnetIds": [], "gpuPools": [], "teams": {}, "scaleToZero": False, "recovery": {}}
    if region is not None:
        structured["region"] = region
    return {key: structured.get(key, f"fabricated-{key}-of-{reference.replace('/', '-')}")
            for key in PLATFORM_OUTPUT_KEYS}


def run_program(program: Callable[[], Any], *, project_name: str, stack: str, config: StackConfig,
                stack_outputs: Callable[[str], Mapping[str, Any]] = fabricated_outputs,
                on_resource: Callable[[ResourceRecord], None] | None = None,
                root_directory: str | None = None) -> PreviewResult:
    """Run ``program`` as the body of a stack under fresh mocks and record what it registers.

    Each call gets its own settings, monitor and event loop, so runs never leak into each other.
    """
    # A referenced stack is previewed from a worker thread while this program goes on.
    make_lazy_loading_thread_safe()
    mocks = PreviewMocks(region=config.values.get("aws:region", "us-east-1"), stack_outputs=stack_outputs)
    monitor = _RecordingMonitor(mocks, on_resource)
    collector = _WarningCollector()
    logger = logging.getLogger(f"aip.preview.{stack}")
    logger.propagate = False
    logger.addHandler(collector)

    def run() -> None:
        # A fresh settings bag per run: previews of several stacks in one process never share state.
        settings = runtime_settings.Settings(project=project_name, stack=stack, monitor=monitor,
                                             engine=MockEngine(logger), dry_run=True,
                                             organization="organization", root_directory=root_directory)
        runtime_settings.ROOT.set(None)
        runtime_settings.configure(settings)
        set_all_config(dict(config.values), list(config.secret_keys))
        loop = asyncio.new_event_loop()
        # A failed program leaves registrations that depend on the failure pending; the failure itself
        # is reported once, as the ProgramError, not again by asyncio for every orphaned task.
        loop.set_exception_handler(lambda _loop, _context: None)
        asyncio.set_event_loop(loop)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                loop.run_until_complete(run_in_stack(program))
        finally:
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_default_executor())
            asyncio.set_event_loop(None)
            loop.close()

    try:
        contextvars.copy_context().run(run)
    except Exception as exc:
        raise ProgramError(stack, exc, monitor.records) from exc
    finally:
        logger.removeHandler(collector)
    warnings_seen = collector.messages + [f"no offline answer for provider function {t}"
                                          for t in mocks.unanswered_calls]
    return PreviewResult(project=project_name, stack=stack, resources=monitor.records,
                         outputs=monitor.stack_outputs, warnings=warnings_seen)


__all__ = ["PreviewResult", "ProgramError", "ResourceRecord", "fabricated_outputs", "run_preview", "run_program"]
