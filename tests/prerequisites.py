"""Tools some tests need beyond Python packages; `make install` provides each of them.

Where one is missing, a test skips and says how to get it. Under CI (`CI` set) it fails instead: a
capability whose tool is missing there would otherwise go untested without anyone noticing.
"""

from __future__ import annotations

import os
import shutil
from typing import NoReturn

import pytest

PROMETHEUS_HINT = "make install installs Debian's prometheus package"
ALERTMANAGER_HINT = "make install installs Debian's prometheus and prometheus-alertmanager packages"
JAVA_HINT = "TorchServe needs Java 17; make install installs openjdk-17-jre-headless"


def unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def tool(name: str, hint: str) -> str:
    """The path of a command a test needs, or a skip (a failure under CI) naming how to install it."""
    found = shutil.which(name)
    if found is None:
        unavailable(f"{name} not installed: {hint}")
    return found


def needs_tools(*names: str, hint: str) -> pytest.MarkDecorator:
    """Mark tests that run commands themselves: skipped where one is missing, run (and failing) under CI."""
    missing = [name for name in names if shutil.which(name) is None]
    return pytest.mark.skipif(bool(missing) and not os.environ.get("CI"),
                              reason=f"{' and '.join(missing)} not installed: {hint}")
