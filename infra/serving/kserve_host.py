"""Child-process entry: one KServe ModelServer hosting every model's own predictor, on loopback only.

    python kserve_host.py SPEC.json

SPEC: {"host": "127.0.0.1", "port": N, "models": [{"name", "folder", "runtime_dir", "model_dir",
"version", "max_batch_instances"}]}. Run by path and standard library plus KServe only: it must not
depend on this repository being importable.

Two things KServe 0.16 does not offer are done here:
- Loopback: `RESTServer` hard-codes host 0.0.0.0; a subclass sets the host on its uvicorn config and
  replaces the name `ModelServer.start` looks up. gRPC is off (`enable_grpc=False`).
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


def main(spec_file: Path) -> None:
    spec = json.loads(spec_file.read_text())
    runtime_dirs = {entry["runtime_dir"] for entry in spec["models"]}
    sys.path[:0] = sorted(runtime_dirs)
    import kserve

    models = []
    for entry in spec["models"]:
        predictor = import_predictor(Path(entry["folder"]), entry["name"])
        model = predictor(entry["name"], entry["model_dir"], max_batch_instances=entry["max_batch_instances"],
                          version=entry["version"])
        model.load()
        models.append(model)
    bind_rest_server_to(spec["host"])
    kserve.ModelServer(http_port=spec["port"], enable_grpc=False).start(models)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: kserve_host.py SPEC.json")
    main(Path(sys.argv[1]))
