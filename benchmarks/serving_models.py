"""The models benchmarks/serving.py serves: packaging, the instances it sends, and the raw worker.

- `digits` and `ranker` are the example models of model-handlers/, packaged by `package_models` into
  `build/bench-models` (cached: trained once per set of training inputs).
- `resnet18` is the ResNet-18-sized CNN of benchmarks/resnet18_model/. At run time its folder is copied,
  with the shared runtime `model-handlers/_runtime`, into a throw-away catalog in a temporary folder,
  `input.json` fixes the image side, and the same `package_models` trains (a fixed-seed initialisation)
  and archives it there. model-handlers/ itself never sees it.
- `RawWorker` runs serving_raw.py for one model in a long-lived interpreter: the model is loaded once,
  and each raw measurement of a round costs only its measuring time.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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
    """A packaged model and the instances the benchmark sends to it (thread i of a phase sends instances[i])."""

    served: ServedModel
    instances: tuple[Any, ...]

    @property
    def name(self) -> str:
        return self.served.name

    @property
    def server_batch_size(self) -> int:
        """TorchServe's batchSize in the model's model-config.yaml: the most requests one forward pass joins."""
        return self.served.folder.config.batch_size


def instance(model: str, rng: random.Random, side: int) -> Any:
    """One valid instance of `model` (random but fixed by the seed)."""
    if model == "digits":
        return [rng.randint(0, 16) for _ in range(64)]
    if model == "ranker":
        return {"user_id": rng.randrange(RANKER_USERS), "k": 10}
    if model == RESNET:
        return [[[rng.randrange(256) for _ in range(side)] for _ in range(side)] for _ in range(3)]
    raise ValueError(f"no request generator for model {model!r}")


def instance_pool(model: str, count: int, side: int) -> tuple[Any, ...]:
    """`count` different instances of `model`, the same in every run."""
    rng = random.Random(SEED)
    return tuple(instance(model, rng, side) for _ in range(count))


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


def prepare(models: Sequence[str], pool_sizes: Mapping[str, int], side: int, scratch: Path
            ) -> dict[str, BenchModel]:
    """Package the models and draw the instances they are sent; `scratch` holds everything temporary."""
    served: dict[str, ServedModel] = {}
    example_names = [m for m in models if m != RESNET]
    if example_names:
        catalog = Catalog(MODEL_HANDLERS)
        manifest = package_models(EXAMPLES_OUT, example_names, catalog=catalog)
        for folder in catalog.select(example_names):
            served[folder.name] = ServedModel(folder, catalog.runtime_dir, manifest.models[folder.name])
    if RESNET in models:
        catalog = resnet_catalog(scratch / "catalog", side)
        manifest = package_models(scratch / "packages", [RESNET], catalog=catalog)
        served[RESNET] = ServedModel(catalog.load(RESNET), MODEL_HANDLERS / RUNTIME_DIR_NAME, manifest.models[RESNET])
    return {name: BenchModel(served[name], instance_pool(name, pool_sizes[name], side)) for name in models}


def extract_weights(model: BenchModel, folder: Path) -> Path:
    """The weights inside the package's archive (the very bytes both runtimes serve), written to `folder`."""
    mar = model.served.package.files[mar_path(model.name)]
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(mar) as archive:
        (folder / WEIGHTS_FILE).write_bytes(archive.read(WEIGHTS_FILE))
    return folder


class RawWorker:
    """serving_raw.py for one model in its own interpreter, loaded once, measuring on request.

    torch threads are the servers': `torchThreads` of the model's model-config.yaml when set (both
    runtimes apply it), else OMP_NUM_THREADS = `threads` when given (the servers get it too), else
    torch's default.

    Args:
        model: The model; the worker predicts on its instances.
        scratch: Temporary folder (weights, instances, the worker's stderr).
        threads: OMP_NUM_THREADS of the servers, or None.
    """

    def __init__(self, model: BenchModel, scratch: Path, threads: int | None = None) -> None:
        self.model = model
        self.scratch = scratch
        self.threads = threads
        self.process: subprocess.Popen[str] | None = None
        self.hello: dict[str, Any] = {}
        self.stderr = scratch / f"raw-{model.name}.log"

    def start(self) -> dict[str, Any]:
        """Start the worker and wait until the model is loaded; its greeting (torch threads)."""
        instances = self.scratch / f"instances-{self.model.name}.json"
        instances.write_text(json.dumps(list(self.model.instances)))
        spec = {
            "folder": str(self.model.served.folder.path),
            "runtime_dir": str(self.model.served.runtime_dir),
            "weights_dir": str(extract_weights(self.model, self.scratch / "weights" / self.model.name)),
            "max_batch_instances": self.model.served.folder.config.max_batch_instances,
            "threads": getattr(self.model.served.folder.config, "torch_threads", None),
            "instances": str(instances),
        }
        spec_file = self.scratch / f"raw-{self.model.name}.json"
        spec_file.write_text(json.dumps(spec))
        with self.stderr.open("w") as errors:
            self.process = subprocess.Popen([sys.executable, str(RAW_SCRIPT), str(spec_file)], stdin=subprocess.PIPE,
                                            stdout=subprocess.PIPE, stderr=errors, text=True,
                                            env=raw_env(self.scratch, self.threads))
        self.hello = self._answer()
        return self.hello

    def measure(self, batch: int, seconds: float, min_calls: int = 3, callers: int = 1,
                threads: int | None = None) -> dict[str, Any]:
        """Back-to-back `ModelCore.predict` on the first `batch` instances for `seconds` from `callers`
        threads at once, with `threads` torch threads (None: the worker's own; see serving_raw.py)."""
        if self.process is None or self.process.stdin is None:
            raise RuntimeError("start() first")
        command = {"batch": batch, "seconds": seconds, "min_calls": min_calls, "callers": callers, "threads": threads}
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        return self._answer()

    def close(self) -> None:
        if self.process is None:
            return
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def _answer(self) -> dict[str, Any]:
        assert self.process is not None and self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            self.process.wait(timeout=30)
            raise RuntimeError(f"raw worker of {self.model.name} exited ({self.process.returncode}):\n"
                               f"{self.stderr.read_text(errors='replace')[-3000:]}")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"raw worker of {self.model.name}: {answer['error']}")
        return answer


def raw_env(scratch: Path, threads: int | None) -> dict[str, str]:
    """The servers' environment (infra.serving.local_server.child_env): torch threads come out the same."""
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME"}}
    env.update({"PYTHONDONTWRITEBYTECODE": "1", "TMPDIR": str(scratch)})
    if threads:
        env.update({"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)})
    return env
