"""Lazily imported provider modules load completely when two threads reach them at once."""

from __future__ import annotations

import importlib.util
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.preview.lazy_imports import lazy_loading_is_thread_safe, make_lazy_loading_thread_safe

# The module's code takes a while to run, as pulumi_aws.ec2's does: long enough for a second thread to arrive.
SLOW_MODULE = """
import time
import {name} as myself
started = True
time.sleep(0.4)
Vpc = "complete"
SEEN_BY_ITSELF = hasattr(myself, "started")
"""


@pytest.fixture
def lazy_module(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[object]:
    name = f"aip_lazy_{request.node.name.replace('[', '_').replace(']', '_')}"
    path = tmp_path / f"{name}.py"
    path.write_text(SLOW_MODULE.format(name=name))
    spec = importlib.util.spec_from_file_location(name, path)
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(name, None)


def _read_from_two_threads(module: object) -> dict[str, object]:
    seen: dict[str, object] = {}

    def read(who: str) -> None:
        try:
            seen[who] = module.Vpc
        except AttributeError as exc:
            seen[who] = exc

    first = threading.Thread(target=read, args=("first",))
    first.start()
    time.sleep(0.1)  # the first thread is now running the module's code
    second = threading.Thread(target=read, args=("second",))
    second.start()
    first.join(5)
    second.join(5)
    return seen


def test_a_second_thread_waits_for_the_module_the_first_is_loading(lazy_module: object) -> None:
    make_lazy_loading_thread_safe()
    assert lazy_loading_is_thread_safe()

    assert _read_from_two_threads(lazy_module) == {"first": "complete", "second": "complete"}
    # The loading thread itself could still read the half-loaded module while its code ran.
    assert lazy_module.SEEN_BY_ITSELF is True
    assert type(lazy_module) is type(sys)


def test_attributes_set_before_the_load_survive_it(lazy_module: object) -> None:
    make_lazy_loading_thread_safe()
    lazy_module.extra = "kept"

    assert lazy_module.Vpc == "complete"
    assert lazy_module.extra == "kept"


def test_making_loading_thread_safe_twice_changes_nothing(lazy_module: object) -> None:
    make_lazy_loading_thread_safe()
    method = importlib.util._LazyModule.__getattribute__
    make_lazy_loading_thread_safe()

    assert importlib.util._LazyModule.__getattribute__ is method
    assert lazy_module.Vpc == "complete"
