"""Lazily imported modules that load safely when two threads reach them at once.

pulumi_aws and pulumi_kubernetes import their submodules lazily (``importlib.util.LazyLoader``). Before
CPython fixed gh-114763 (3.12.3), a lazy module was marked loaded before its code had run, so a second
thread reading it at that moment found it half empty: ``module 'pulumi_aws.ec2' has no attribute 'Vpc'``.
An offline preview previews the stacks a program references from a worker thread while that program
goes on in the main one, so both may load the same provider module at once. This gives older
interpreters the fixed behaviour: one thread loads, the others wait for it.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
import threading
import types
from typing import Any

_LazyModule = importlib.util._LazyModule  # the class whose loading is made thread-safe
_guard = threading.Lock()


def _load_then_get(self: types.ModuleType, attr: str) -> Any:
    get = object.__getattribute__
    spec = get(self, "__spec__")
    state = spec.loader_state
    with _guard:
        lock = state.setdefault("lock", threading.RLock())
    with lock:
        if get(self, "__class__") is _LazyModule:
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


class _ProbeLoader(importlib.abc.Loader):
    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None

    def exec_module(self, module: types.ModuleType) -> None:
        pass


def lazy_loading_is_thread_safe() -> bool:
    """Whether this interpreter's LazyLoader locks a module while it loads (CPython gh-114763)."""
    spec = importlib.machinery.ModuleSpec("_aip_lazy_probe", importlib.util.LazyLoader(_ProbeLoader()))
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
    return "lock" in spec.loader_state or _LazyModule.__getattribute__ is _load_then_get


def make_lazy_loading_thread_safe() -> None:
    """Make lazy modules load under a per-module lock where the interpreter does not already; idempotent."""
    if not lazy_loading_is_thread_safe():
        _LazyModule.__getattribute__ = _load_then_get


__all__ = ["lazy_loading_is_thread_safe", "make_lazy_loading_thread_safe"]
