"""The handlers run under Python 3.9: the image pytorch/torchserve-kfs:0.12.0 ships 3.9 (pytorch/serve#3374).

The repository itself runs 3.11, so nothing else would notice a 3.10+ construct until a worker fails to
load in the cluster. Three checks: every module byte-compiles under a real 3.9 interpreter; the torch-free
runtime modules import and work there, with ``ecs_logging`` absent as it is in that image; and a scan of
the syntax tree for what compiles on 3.9 but fails when it runs (``typing.Self``, ``zip(strict=...)``,
``isinstance(x, A | B)``, ``datetime.UTC``). ``model-handlers/ruff.toml`` lints the folder for py39 too.
"""

from __future__ import annotations

import ast
import glob
import json
import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from tests.handlers.conftest import MODEL_HANDLERS, RUNTIME
from tests.prerequisites import unavailable

HANDLER_SOURCES = sorted([*RUNTIME.rglob("*.py"), *MODEL_HANDLERS.glob("*/*.py")])


def is_python39(candidate: str | None) -> bool:
    """Whether ``candidate`` runs as Python 3.9 (a pyenv shim may exist and still fail)."""
    if not candidate or not os.access(candidate, os.X_OK):
        return False
    try:
        probe = subprocess.run([candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 9))"],
                               capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.stdout.strip() == "True"


def find_python39() -> str | None:
    """``$AIP_PYTHON39``, a pyenv 3.9 (how the CI machine provides it), or a ``python3.9`` on PATH."""
    pyenv_root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    candidates = [os.environ.get("AIP_PYTHON39")]
    candidates += sorted(glob.glob(f"{pyenv_root}/versions/3.9*/bin/python3.9"), reverse=True)
    candidates += sorted(glob.glob("/root/.pyenv/versions/3.9*/bin/python3.9"), reverse=True)
    candidates.append(shutil.which("python3.9"))
    return next((c for c in candidates if is_python39(c)), None)


PYTHON39 = find_python39()
needs_python39 = pytest.mark.skipif(
    PYTHON39 is None,
    reason="no Python 3.9 interpreter found (set AIP_PYTHON39, or put python3.9 on PATH or in pyenv); "
    "the handlers' image runs 3.9, so CI must have one",
)


def run39(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    assert PYTHON39 is not None
    # Bytecode goes to tmp_path, not into model-handlers/ (where it would end up in archives).
    env = {**os.environ, "PYTHONPYCACHEPREFIX": str(tmp_path / "pycache"), "PYTHONNOUSERSITE": "1"}
    env.pop("PYTHONPATH", None)
    env.pop("PYTHONHOME", None)
    return subprocess.run([PYTHON39, *args], capture_output=True, text=True, timeout=120, env=env, check=False)


def test_the_handler_sources_are_found() -> None:
    names = {f"{path.parent.name}/{path.name}" for path in HANDLER_SOURCES}
    assert {"aip_serving/core.py", "digits/handler.py", "ranker/predictor.py", "ranker/train.py"} <= names


@needs_python39
def test_every_handler_module_compiles_under_python39(tmp_path: Path) -> None:
    result = run39(["-m", "py_compile", *map(str, HANDLER_SOURCES)], tmp_path)
    assert result.returncode == 0, result.stderr


@needs_python39
def test_torch_free_runtime_works_under_python39_without_ecs_logging(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import io, json, sys, types
        sys.path.insert(0, sys.argv[1])
        sys.modules["ecs_logging"] = None  # absent, as in pytorch/torchserve-kfs:0.12.0
        try:
            import yaml  # noqa: F401  (in the image: TorchServe depends on PyYAML)
        except ImportError:
            stub = types.ModuleType("yaml")
            stub.safe_load = json.loads
            sys.modules["yaml"] = stub
        from aip_serving import checks, errors, logs, model_config, protocol

        assert sys.version_info[:2] == (3, 9), sys.version
        assert logs.ecs_logging is None
        stream = io.StringIO()
        logger = logs.configure_request_logger(stream)
        logs.log_request(logger, logs.RequestRecord("r-1", "digits", "1.0", "torchserve", 400, 2.5, 3,
                                                    batch_requests=2, error_type="InputError"))
        refused = []
        for body in (b'{"instances": [' + b"9" * 5000 + b"]}", {"instances": [], "k" * 150000: 1}, b"\\xff"):
            try:
                protocol.read_instances(body)
            except errors.InputError as err:
                refused.append(err.message)
        try:
            checks.json_object("x", {"a": 1}, required=["b"], example="{}")
        except errors.InputError as err:
            refused.append(err.message)
        print(json.dumps({
            "line": stream.getvalue(),
            "instances": protocol.read_instances('{"instances": [1, true]}'),
            "json_type": [checks.json_type(v) for v in (1, 1.5, "s", b"b", [1], (1,), {}, None, True)],
            "limit": model_config.max_batch_instances({"maxBatchInstances": 4}),
            "threads": model_config.torch_threads({"torchThreads": 2}),
            "encoded": protocol.encode_json({"predictions": [1, "\\u00e9"]}).decode(),
            "refused": refused,
        }))
        """
    )
    result = run39(["-c", script, str(RUNTIME)], tmp_path)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    (line,) = out["line"].splitlines()
    record = json.loads(line)
    assert list(record)[:3] == ["@timestamp", "log.level", "message"]
    assert record["@timestamp"].endswith("Z") and len(record["@timestamp"]) == len("2024-05-01T12:00:00.123Z")
    del record["@timestamp"]
    assert record == {
        "log.level": "warning",
        "message": "inference request refused",
        "ecs.version": "1.6.0",
        "log": {"logger": "aip_serving.requests"},
        "http": {"request": {"id": "r-1"}, "response": {"status_code": 400}},
        "event": {"kind": "event", "category": ["web"], "outcome": "failure", "duration": 2_500_000},
        "error": {"type": "InputError"},
        "aip": {"model": {"name": "digits", "version": "1.0"}, "runtime": "torchserve", "latency_ms": 2.5,
                "batch": {"instances": 3, "requests": 2}},
    }
    assert out["instances"] == [1, True]
    assert out["json_type"] == ["number", "number", "string", "string", "array", "array", "object", "null",
                                "boolean"]
    assert out["limit"] == 4
    assert out["threads"] == 2
    assert json.loads(out["encoded"]) == {"predictions": [1, "\u00e9"]} and " " not in out["encoded"]
    huge, long_key, not_utf8, missing = out["refused"]
    assert "integers may have at most 4300 digits" in huge
    assert long_key == f'unknown top-level field "{"k" * 64}\u2026" (allowed: instances)'
    assert not_utf8.startswith("request body is not UTF-8 text")
    assert missing == 'x: unknown field "a" (allowed: b)'


def runtime_only_on_310(tree: ast.AST) -> list[str]:
    """Constructs that compile on 3.9 but fail when they run there."""
    found = []
    for node in ast.walk(tree):
        where = f"line {getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.ImportFrom) and node.module in ("typing", "datetime"):
            found += [f"{where}: from {node.module} import {a.name}" for a in node.names
                      if a.name in ("Self", "TypeAlias", "ParamSpec", "Concatenate", "TypeGuard", "UTC")]
        elif isinstance(node, ast.Attribute) and node.attr in ("Self", "UTC", "TypeAlias"):
            found.append(f"{where}: .{node.attr}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id == "zip" and any(k.arg == "strict" for k in node.keywords):
                found.append(f"{where}: zip(strict=...)")
            if node.func.id in ("isinstance", "issubclass") and len(node.args) == 2 and any(
                isinstance(n, ast.BinOp) and isinstance(n.op, ast.BitOr) for n in ast.walk(node.args[1])
            ):
                found.append(f"{where}: {node.func.id}(x, A | B)")
            if node.func.id == "dataclass" and any(k.arg in ("slots", "kw_only") for k in node.keywords):
                found.append(f"{where}: dataclass(slots/kw_only)")
    return found


def test_no_handler_module_uses_what_python39_cannot_run() -> None:
    problems = {
        str(path.relative_to(MODEL_HANDLERS)): found
        for path in HANDLER_SOURCES
        if (found := runtime_only_on_310(ast.parse(path.read_text(encoding="utf-8"))))
    }
    assert problems == {}


def test_the_scan_finds_what_it_looks_for() -> None:
    sample = ("from typing import Self\nisinstance(x, int | str)\nzip(a, b, strict=True)\n"
              "@dataclass(slots=True)\nclass A: pass\n")
    assert len(runtime_only_on_310(ast.parse(sample))) == 4


def test_every_handler_module_postpones_annotations() -> None:
    """PEP 604 / 585 annotations are evaluated on 3.9 unless annotations are postponed."""
    missing = [
        str(path.relative_to(MODEL_HANDLERS)) for path in HANDLER_SOURCES
        if "from __future__ import annotations" not in path.read_text(encoding="utf-8")
        and ("|" in path.read_text(encoding="utf-8") or "def " in path.read_text(encoding="utf-8"))
    ]
    assert missing == []


def test_ruff_lints_the_handlers_for_python39() -> None:
    ruff = shutil.which("ruff") or str(Path(os.sys.executable).parent / "ruff")
    if not os.access(ruff, os.X_OK):
        unavailable("ruff not installed: make install installs the dev extra, which has it")
    result = subprocess.run([ruff, "check", "--no-cache", "--target-version", "py39", str(MODEL_HANDLERS)],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
