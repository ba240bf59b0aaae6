"""Child-process entry: one KServe ModelServer hosting every model's own predictor, on loopback only.

    python kserve_host.py SPEC.json

SPEC: {"host": "127.0.0.1", "port": N, "grpc_port": N (absent or 0: no gRPC), "models": [{"name", "folder",
"runtime_dir", "model_dir", "version", "max_batch_instances", "batch_size", "workers", "torch_threads"}]}. Run by path
and standard library plus KServe only: it must not depend on this repository being importable.

torch's intra-op thread count belongs to the process, not to a model: with several models in one process
the largest `torchThreads` among them applies to all (a model that asked for fewer may then use more, never
fewer than it asked for); none set, the CPUs are shared by the most forward passes one model runs at once
(`minWorkers`, aip_serving.threads). A KServe pod hosts one model, so there each model gets exactly its
own (`aip_serving.kserve.serve`).

Two things KServe 0.16 does not offer are done here:
- Loopback: `RESTServer` hard-codes host 0.0.0.0; a subclass sets the host on its uvicorn config and
  replaces the name `ModelServer.start` looks up. `GRPCServer` hard-codes `[::]`; a subclass of the
  runtime's guarded gRPC server (`aip_serving.grpc_guard`) sets the host the same way.
- Several models in one interpreter: each model folder has top-level modules named `core` and `model`.
  After importing one model's predictor, its modules are dropped from `sys.modules` (its classes keep
  references to them), so the next model imports its own `core`, not the previous one's.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import sys
from pathlib import Path
from typing import Any


def import_predictor(folder: Path, name: str) -> type:
    """The one KServeModel subclass defined in `folder/predictor.py`."""
    from aip_serving.kserve import KServeModel

    sys.path.insert(0, str(folder))
    try:
        spec = importlib.util.spec_from_file_location(f"aip_predictor_{name.replace('-', '_')}",
                                                      folder / "predictor.py")
        if spec is None or spec.loader is None:
            raise SystemExit(f"cannot import {folder / 'predictor.py'}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(folder))
        _forget_modules_under(folder)
    classes = [value for value in vars(module).values()
               if inspect.isclass(value) and issubclass(value, KServeModel) and value.__module__ == module.__name__]
    if len(classes) != 1:
        raise SystemExit(f"{folder / 'predictor.py'} must define exactly one KServeModel subclass, "
                         f"found {[c.__name__ for c in classes]}")
    return classes[0]


def _forget_modules_under(folder: Path) -> None:
    for module_name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if file and Path(file).resolve().is_relative_to(folder.resolve()):
            del sys.modules[module_name]


def bind_rest_server_to(host: str) -> None:
    """Make KServe's REST server listen on `host` instead of its hard-coded 0.0.0.0."""
    import kserve.model_server
    from kserve.protocol.rest.server import RESTServer

    class HostBoundRESTServer(RESTServer):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.config.host = host

    kserve.model_server.RESTServer = HostBoundRESTServer  # type: ignore[misc]


def bind_grpc_server_to(host: str) -> None:
    """Make KServe's gRPC server listen on `host` instead of its hard-coded `[::]`, guarded as in a pod.

    The runtime's guarded server (refused repository RPCs, checked requests, counted calls) is the one
    subclassed; `KServeModel.start` keeps a subclass of it in place instead of installing its own.
    """
    import kserve.model_server
    from aip_serving.grpc_guard import GuardedGRPCServer

    class HostBoundGRPCServer(GuardedGRPCServer):
        listen_host = host

    kserve.model_server.GRPCServer = HostBoundGRPCServer  # type: ignore[misc]


def process_torch_threads(entries: list[dict[str, Any]]) -> int | None:
    """The largest `torch_threads` of the hosted models, or None when none sets it (see the module docstring)."""
    return max((entry["torch_threads"] for entry in entries if entry.get("torch_threads") is not None), default=None)


def main(spec_file: Path) -> None:
    spec = json.loads(spec_file.read_text())
    runtime_dirs = {entry["runtime_dir"] for entry in spec["models"]}
    sys.path[:0] = sorted(runtime_dirs)
    import kserve
    from aip_serving.threads import apply_torch_threads

    # Before any model loads or runs; unset, the CPUs shared by the most forward passes one model runs at once.
    apply_torch_threads(process_torch_threads(spec["models"]),
                        max((entry.get("workers") or 1 for entry in spec["models"]), default=1))
    models = []
    for entry in spec["models"]:
        predictor = import_predictor(Path(entry["folder"]), entry["name"])
        model = predictor(entry["name"], entry["model_dir"], max_batch_instances=entry["max_batch_instances"],
                          version=entry["version"], batch_size=entry.get("batch_size"),
                          workers=entry.get("workers"))
        model.load()
        models.append(model)
    bind_rest_server_to(spec["host"])
    grpc_port = spec.get("grpc_port")
    if grpc_port:
        bind_grpc_server_to(spec["host"])
    from aip_serving.kserve import SERVER_OPTIONS

    kserve.ModelServer(http_port=spec["port"], grpc_port=grpc_port or 0, enable_grpc=bool(grpc_port),
                       **SERVER_OPTIONS).start(models)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: kserve_host.py SPEC.json")
    main(Path(sys.argv[1]))
