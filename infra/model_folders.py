"""The models a team can deploy: the folders under model-handlers/ (folders starting with `_` are not models)."""

from __future__ import annotations

from pathlib import Path

MODEL_HANDLERS = Path(__file__).resolve().parents[1] / "model-handlers"


def model_names(root: Path = MODEL_HANDLERS) -> tuple[str, ...]:
    """Sorted names of the model folders (each has a model-config.yaml)."""
    if not root.is_dir():
        return ()
    return tuple(sorted(p.name for p in root.iterdir()
                        if p.is_dir() and not p.name.startswith(("_", ".")) and (p / "model-config.yaml").is_file()))
