"""Lazily imported modules that load safely when two threads reach them at once.

pulumi_aws and pulumi_kubernetes import their submodules lazily, through the Pulumi SDK's copy of the standard
library's lazy loader (``pulumi._utils._LazyLoader``). That loader, like ``importlib.util.LazyLoader`` before CPython
fixed gh-114763 (3.12.3), marks a module loaded before its code has run, so a second thread reading it at that moment
finds it half empty: ``module 'pulumi_aws.ec2' has no attribute 'Vpc'``. An offline preview previews the stacks a
program references from a worker thread while that program goes on in the main one, so both may load the same
provider module at once. This makes both loaders behave as the fixed one does: one thread loads, the others wait.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
import threading
import types
from collections.abc import Callable, Collection, Iterator
from typing import Any

_guard = threading.Lock()
_MARK = "_aip_thread_safe"


def _thread_safe_getattribute(lazy_class: type, passthrough: Collection[str]) -> Callable[[Any, str], Any]:
    def __getattribute__(self: types.ModuleType, attr: str) -> Any:  # replaces the lazy class's own
        get = object.__getattribute__
        if attr in passthrough:
            # Attributes the loader hands out without loading (introspection: __spec__, __path__, ...).
            return types.ModuleType.__getattribute__(self, attr)
        spec = get(self, "__spec__")
        state = spec.loader_state
        with _guard:
            lock = state.setdefault("lock", threading.RLock())
        with lock:
            if get(self, "__class__") is lazy_class:
                if state.get("is_loading"):
                    # The loading thread itself, while the module's code runs: as an eager import would see it.
                    return get(self, attr)
                state["is_loading"] = True
                namespace = get(self, "__dict__")
                before = state["__dict__"]
                # Attributes set on the lazy module before it loaded survive the load, as they would eagerly.
                updated = {key: value for key, value in namespace.items()
                           if key not in before or before[key] is not value}
                spec.loader.exec_module(self)
                if spec.name in sys.modules and sys.modules[spec.name] is not self:
                    raise ValueError(f"module object for {spec.name!r} substituted in sys.modules during a lazy load")
                namespace.update(updated)
                # Only now, with the module complete, do other threads stop waiting here.
                object.__setattr__(self, "__class__", state["__class__"])
        return getattr(self, attr)

    setattr(__getattribute__, _MARK, True)
    return __getattribute__


def lazy_loaders() -> Iterator[tuple[type, type[importlib.abc.Loader], frozenset[str]]]:
    """(lazy module class, its loader, attributes it hands out without loading) of every lazy loader in use."""
    yield importlib.util._LazyModule, importlib.util.LazyLoader, frozenset()  # the class whose loading is made safe
    try:
        from pulumi import _utils as pulumi_utils
    except ImportError:
        return
    if hasattr(pulumi_utils, "_LazyModule") and hasattr(pulumi_utils, "_LazyLoader"):
        yield (pulumi_utils._LazyModule, pulumi_utils._LazyLoader,
               frozenset(getattr(pulumi_utils, "_INTROSPECTION_ATTRS", ())))


class _ProbeLoader(importlib.abc.Loader):
    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None

    def exec_module(self, module: types.ModuleType) -> None:
        pass


def _is_thread_safe(lazy_class: type, loader: type[importlib.abc.Loader]) -> bool:
    if getattr(lazy_class.__getattribute__, _MARK, False):
        return True
    # A loader that locks (the fixed standard library) keeps its lock in the module's loader state.
    spec = importlib.machinery.ModuleSpec("_aip_lazy_probe", loader(_ProbeLoader()))
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
    return "lock" in spec.loader_state


def lazy_loading_is_thread_safe() -> bool:
    """Whether every lazy loader in use locks a module while it loads."""
    return all(_is_thread_safe(lazy_class, loader) for lazy_class, loader, _ in lazy_loaders())


def make_lazy_loading_thread_safe() -> None:
    """Make lazy modules load under a per-module lock where their loader does not already; idempotent."""
    for lazy_class, loader, passthrough in lazy_loaders():
        if not _is_thread_safe(lazy_class, loader):
            lazy_class.__getattribute__ = _thread_safe_getattribute(lazy_class, passthrough)


__all__ = ["lazy_loaders", "lazy_loading_is_thread_safe", "make_lazy_loading_thread_safe"]
