"""The models benchmarks/serving.py serves: packaging, request bodies and the in-process (raw) measurement.

- `digits` and `ranker` are the example models of model-handlers/, packaged by `package_models` into
  `build/bench-models` (cached: trained once per set of training inputs).
- `resnet18` is the ResNet-18-sized CNN of benchmarks/resnet18_model/. At run time its folder is copied,
  with the shared runtime `model-handlers/_runtime`, into a throw-away catalog in a temporary folder,
  `input.json` fixes the image side, and the same `package_models` trains (a fixed-seed initialisation)
  and archives it there. model-handlers/ itself never sees it.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from infra.serving.archive import WEIGHTS_FILE
from infra.serving.catalog import MODEL_HANDLERS, RUNTIME_DIR_NAME, Catalog
from infra.serving.local_server import ServedModel
from infra.serving.manifest import mar_path
from infra.serving.package import DEFAULT_OUT, package_models

# The example models are packaged into a cache of the benchmark's own (trained once, like `aip package`'s),
# so that it never waits for, or changes, the packages other commands build into build/models.
EXAMPLES_OUT = DEFAULT_OUT.parent / "bench-models"

BENCHMARKS = Path(__file__).resolve().parent
RESNET_SOURCE = BENCHMARKS / "resnet18_model"
RESNET = "resnet18"
RAW_SCRIPT = BENCHMARKS / "serving_raw.py"
SEED = 2024
RANKER_USERS = 600  # known user ids 0..599 (model-handlers/README.md)


@dataclass(frozen=True)
class BenchModel:
    """A packaged model and the bodies the benchmark sends to it (one per batch size)."""

    served: ServedModel
    bodies: dict[int, Path]

    @property
    def name(self) -> str:
        return self.served.name

    def body(self, batch: int) -> bytes:
        return self.bodies[batch].read_bytes()

    def with_config(self, **changes: int) -> BenchModel:
        """The same package with other TorchServe settings (`min_workers`, `batch_size`...): no re-archiving.

        TorchServe takes workers and batching from `model_snapshot` in config.properties, which the
        local server renders from the folder's parsed `model-config.yaml`.
        """
        folder = self.served.folder
        config = folder.config.model_copy(update=changes)
        return replace(self, served=replace(self.served, folder=replace(folder, config=config)))


def instance(model: str, rng: random.Random, side: int) -> Any:
    """One valid instance of `model` (random but fixed by the seed)."""
    if model == "digits":
        return [rng.randint(0, 16) for _ in range(64)]
    if model == "ranker":
        return {"user_id": rng.randrange(RANKER_USERS), "k": 10}
    if model == RESNET:
        return [[[rng.randrange(256) for _ in range(side)] for _ in range(side)] for _ in range(3)]
    raise ValueError(f"no request generator for model {model!r}")


def write_bodies(model: str, batches: Sequence[int], side: int, folder: Path) -> dict[int, Path]:
    """`{"instances": [...]}` bodies, compact JSON, one file per batch size."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(SEED)
    largest = [instance(model, rng, side) for _ in range(max(batches))]
    bodies = {}
    for batch in batches:
        path = folder / f"{model}-{batch}.json"
        path.write_text(json.dumps({"instances": largest[:batch]}, separators=(",", ":")))
        bodies[batch] = path
    return bodies


def resnet_catalog(root: Path, side: int) -> Catalog:
    """A catalog in `root` holding only the ResNet-18-sized model, with a link to the shared runtime.

    A link, not a copy: a KServe server hosting it next to the example models puts every model's
    runtime folder on sys.path, and they must be the same runtime.
    """
    root.mkdir(parents=True, exist_ok=True)
    (root / RUNTIME_DIR_NAME).symlink_to(MODEL_HANDLERS / RUNTIME_DIR_NAME, target_is_directory=True)
    shutil.copytree(RESNET_SOURCE, root / RESNET, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "ruff.toml"))
    (root / RESNET / "input.json").write_text(json.dumps({"side": side}) + "\n")
    return Catalog(root)


def prepare(models: Sequence[str], batches: Sequence[int], side: int, scratch: Path) -> dict[str, BenchModel]:
    """Package the models and write their request bodies; `scratch` holds everything temporary."""
    prepared: dict[str, BenchModel] = {}
    example_names = [m for m in models if m != RESNET]
    if example_names:
        catalog = Catalog(MODEL_HANDLERS)
        manifest = package_models(EXAMPLES_OUT, example_names, catalog=catalog)
        for folder in catalog.select(example_names):
            served = ServedModel(folder, catalog.runtime_dir, manifest.models[folder.name])
            prepared[folder.name] = BenchModel(served, write_bodies(folder.name, batches, side, scratch / "bodies"))
    if RESNET in models:
        catalog = resnet_catalog(scratch / "catalog", side)
        manifest = package_models(scratch / "packages", [RESNET], catalog=catalog)
        folder = catalog.load(RESNET)
        served = ServedModel(folder, MODEL_HANDLERS / RUNTIME_DIR_NAME, manifest.models[RESNET])
        prepared[RESNET] = BenchModel(served, write_bodies(RESNET, batches, side, scratch / "bodies"))
    return {name: prepared[name] for name in models}


def extract_weights(model: BenchModel, folder: Path) -> Path:
    """The weights inside the package's archive (the very bytes both runtimes serve), written to `folder`."""
    mar = model.served.package.files[mar_path(model.name)]
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(mar) as archive:
        (folder / WEIGHTS_FILE).write_bytes(archive.read(WEIGHTS_FILE))
    return folder


def _raw_spec(model: BenchModel, *, threads: int, seconds: float, scratch: Path, quick: bool = False
              ) -> dict[str, Any]:
    return {
        "min_calls": 3 if quick else 5,
        "no_grad": not quick,
        "folder": str(model.served.folder.path),
        "runtime_dir": str(model.served.runtime_dir),
        "weights_dir": str(extract_weights(model, scratch / "weights" / model.name)),
        "max_batch_instances": model.served.folder.config.max_batch_instances,
        "threads": threads,
        "seconds": seconds,
        "bodies": {str(batch): str(path) for batch, path in model.bodies.items()},
    }


def measure_raw(model: BenchModel, *, threads: int, seconds: float, scratch: Path, quick: bool = False
                ) -> dict[str, Any]:
    """Run serving_raw.py for one model in a fresh interpreter (see its docstring)."""
    spec = _raw_spec(model, threads=threads, seconds=seconds, scratch=scratch, quick=quick)
    spec_file = scratch / f"raw-{model.name}-{threads}t.json"
    spec_file.write_text(json.dumps(spec))
    run = subprocess.run([sys.executable, str(RAW_SCRIPT), str(spec_file)], capture_output=True, text=True,
                         timeout=600, check=False, env=_child_env(scratch))
    if run.returncode != 0:
        raise RuntimeError(f"raw measurement of {model.name} failed:\n{run.stderr[-3000:]}")
    return json.loads(run.stdout.strip().splitlines()[-1])


def measure_raw_parallel(model: BenchModel, *, processes: int, seconds: float, scratch: Path) -> dict[str, Any]:
    """`processes` one-thread raw measurements at the same time: the limit of N workers x 1 thread.

    Returns, per batch, the summed `ips`/`rps` of `core_predict` and `forward` over the processes.
    """
    spec = _raw_spec(model, threads=1, seconds=seconds, scratch=scratch)
    spec_file = scratch / f"raw-{model.name}-parallel.json"
    spec_file.write_text(json.dumps(spec))
    children = [subprocess.Popen([sys.executable, str(RAW_SCRIPT), str(spec_file)], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, env=_child_env(scratch))
                for _ in range(processes)]
    outputs = []
    try:
        for child in children:
            out, err = child.communicate(timeout=600)
            if child.returncode != 0:
                raise RuntimeError(f"parallel raw measurement of {model.name} failed:\n{err[-3000:]}")
            outputs.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    combined: dict[str, Any] = {"processes": processes, "threads": 1, "batches": {}}
    for batch in outputs[0]["batches"]:
        combined["batches"][batch] = {
            path: {key: round(sum(o["batches"][batch][path][key] for o in outputs), 2) for key in ("rps", "ips")}
            for path in ("core_predict", "forward")
        }
    return combined


def _child_env(scratch: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "OMP_NUM_THREADS", "MKL_NUM_THREADS"}}
    env.update({"PYTHONDONTWRITEBYTECODE": "1", "TMPDIR": str(scratch)})
    return env
