"""Lazily imported provider modules load completely when two threads reach them at once."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.preview.lazy_imports import lazy_loaders, lazy_loading_is_thread_safe, make_lazy_loading_thread_safe
from tests.conftest import ROOT

# The standard library's lazy loader and the Pulumi SDK's copy of it, which the providers' packages use.
LOADERS = {lazy_class.__module__: loader for lazy_class, loader, _ in lazy_loaders()}

# The module's code takes a while to run, as pulumi_aws.ec2's does: long enough for a second thread to arrive.
SLOW_MODULE = """
import time
import {name} as myself
started = True
time.sleep(0.4)
Vpc = "complete"
SEEN_BY_ITSELF = hasattr(myself, "started")
"""


def test_both_the_standard_and_the_pulumi_lazy_loaders_are_covered():
    assert set(LOADERS) == {"importlib.util", "pulumi._utils"}


@pytest.fixture(params=sorted(LOADERS))
def lazy_module(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[object]:
    name = "aip_lazy_" + "".join(c if c.isalnum() else "_" for c in request.node.name)
    path = tmp_path / f"{name}.py"
    path.write_text(SLOW_MODULE.format(name=name))
    spec = importlib.util.spec_from_file_location(name, path)
    spec.loader = LOADERS[request.param](spec.loader)
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
    methods = [lazy_class.__getattribute__ for lazy_class, _, _ in lazy_loaders()]
    make_lazy_loading_thread_safe()

    assert [lazy_class.__getattribute__ for lazy_class, _, _ in lazy_loaders()] == methods
    assert lazy_module.Vpc == "complete"


# Provider modules that load slowly, as on a busy machine: the window in which the referencing program and the
# preview of the stack it reads (prod-dr reads prod) both reach the same module.
SLOW_PROVIDER_PREVIEW = """
import importlib.machinery, time
load = importlib.machinery.SourceFileLoader.exec_module
def slowly(self, module):
    if module.__name__ in ("pulumi_aws.ec2", "pulumi_aws.s3", "pulumi_aws.iam", "pulumi_aws.kms", "pulumi_aws.eks"):
        time.sleep(1.5)
    return load(self, module)
importlib.machinery.SourceFileLoader.exec_module = slowly
from infra.preview.runner import run_preview
print(len(run_preview("prod-dr").resources))
"""


@pytest.mark.integration
def test_a_stack_and_the_stack_it_reads_preview_together_while_provider_modules_load_slowly():
    run = subprocess.run([sys.executable, "-c", SLOW_PROVIDER_PREVIEW], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert int(run.stdout.split()[-1]) > 100
