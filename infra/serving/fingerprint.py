"""Content hashes: of one file, and of a set of named inputs (what content-addressed versions are made of)."""

from __future__ import annotations

import fnmatch
import hashlib
from collections.abc import Iterable
from pathlib import Path

# Never part of a model's inputs: caches, editor and VCS droppings.
IGNORED_PARTS = frozenset({"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"})
IGNORED_SUFFIXES = (".pyc", ".pyo", ".swp", "~")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def source_files(root: Path, *, exclude: Iterable[str] = ()) -> list[Path]:
    """Every regular file under `root`, sorted, without caches, hidden files or excluded top-level names.

    `exclude` holds glob patterns (`Dockerfile*`) matched against the first part of each relative path.
    """
    patterns = tuple(exclude)
    files = []
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        if any(fnmatch.fnmatchcase(relative.parts[0], p) for p in patterns) or not path.is_file():
            continue
        if any(part in IGNORED_PARTS or part.startswith(".") for part in relative.parts):
            continue
        if path.name.endswith(IGNORED_SUFFIXES):
            continue
        files.append(path)
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def digest_inputs(inputs: Iterable[tuple[str, bytes]]) -> str:
    """sha256 over (name, content) pairs, each length-prefixed so no two different sets collide by concatenation."""
    digest = hashlib.sha256()
    for name, content in sorted(inputs, key=lambda item: item[0]):
        encoded = name.encode("utf-8")
        digest.update(len(encoded).to_bytes(8, "big") + encoded)
        digest.update(len(content).to_bytes(8, "big") + content)
    return digest.hexdigest()


def tree_inputs(root: Path, prefix: str, *, exclude: Iterable[str] = ()) -> list[tuple[str, bytes]]:
    """(`prefix/relative path`, bytes) for every source file under `root`."""
    return [(f"{prefix}/{p.relative_to(root).as_posix()}", p.read_bytes()) for p in source_files(root, exclude=exclude)]
