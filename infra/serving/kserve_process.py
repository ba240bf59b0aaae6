"""A real KServe ModelServer on loopback hosting every model's predictor (infra/serving/kserve_host.py).

Work dir layout (nothing is written outside it):

    kserve-spec.json           what the child serves: models, folders, weights, host and port
    models/<model>/weights.pt  the weights taken out of the packaged archive (the very bytes TorchServe serves)
    tmp/                       TMPDIR
    logs/stdout.log            the server's output
"""

from __future__ import annotations

import json
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path

import httpx

from infra.serving import kserve_host
from infra.serving.archive import WEIGHTS_FILE
from infra.serving.local_server import (
    READY_TIMEOUT_S,
    Endpoint,
    ServedModel,
    child_env,
    http_client,
    wait_until,
)
from infra.serving.manifest import mar_path
from infra.serving.problems import ServingError
from infra.serving.processes import LOOPBACK, ProcessGroup, free_ports, port_is_free


class KServeServer:
    """One KServe ModelServer process serving the given models over REST (v1 and v2), gRPC off.

    Args:
        models: The models, packaged.
        work_dir: An empty folder this server owns.
        port: HTTP port; 0 picks a free one.
    """

    runtime = "kserve"

    def __init__(self, models: Sequence[ServedModel], work_dir: Path, *, port: int = 0):
        self.models = list(models)
        self.work_dir = work_dir
        if port and not port_is_free(port):
            raise ServingError(f"port {port} on 127.0.0.1 is in use")
        self.port = port or free_ports(1)[0]
        self.base_url = f"http://{LOOPBACK}:{self.port}"
        self._group: ProcessGroup | None = None
        self._client = http_client()

    def start(self) -> None:
        (self.work_dir / "tmp").mkdir(parents=True, exist_ok=True)
        entries = []
        for model in self.models:
            model_dir = self.work_dir / "models" / model.name
            model_dir.mkdir(parents=True, exist_ok=True)
            with zipfile.ZipFile(model.package.files[mar_path(model.name)]) as archive:
                (model_dir / WEIGHTS_FILE).write_bytes(archive.read(WEIGHTS_FILE))
            entries.append({"name": model.name, "folder": str(model.folder.path),
                            "runtime_dir": str(model.runtime_dir), "model_dir": str(model_dir),
                            "version": model.package.version,
                            "max_batch_instances": model.folder.config.max_batch_instances})
        spec = self.work_dir / "kserve-spec.json"
        spec.write_text(json.dumps({"host": LOOPBACK, "port": self.port, "models": entries}, indent=2))
        self._group = ProcessGroup([sys.executable, kserve_host.__file__, str(spec)], cwd=self.work_dir,
                                   env=child_env(self.work_dir), log_file=self.work_dir / "logs" / "stdout.log")

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        """/v2/health/ready and every /v2/models/<m>/ready answer 200."""
        wait_until(self.ready, timeout=timeout, alive=self.running, what="KServe and its models",
                   log_tail=self.log_tail)

    def ready(self) -> bool:
        try:
            paths = ["/v2/health/ready", *(f"/v2/models/{m.name}/ready" for m in self.models)]
            return all(self._client.get(self.base_url + path).status_code == 200 for path in paths)
        except httpx.HTTPError:
            return False

    def running(self) -> bool:
        return self._group is not None and self._group.leader_alive()

    def stop(self) -> None:
        """SIGTERM the process group (uvicorn shuts down gracefully), SIGKILL what is left."""
        self._client.close()
        if self._group is not None:
            self._group.stop()

    def endpoints(self) -> list[Endpoint]:
        found = []
        for model in self.models:
            found.append(Endpoint(model.name, "POST", self.v1_url(model.name), "KServe v1"))
            found.append(Endpoint(model.name, "POST", self.v2_url(model.name), "KServe v2"))
        found.append(Endpoint("*", "GET", f"{self.base_url}/v2/health/ready", "health"))
        found.append(Endpoint("*", "GET", self.metrics_url(), "Prometheus metrics"))
        return found

    def v1_url(self, model: str) -> str:
        return f"{self.base_url}/v1/models/{model}:predict"

    def v2_url(self, model: str) -> str:
        return f"{self.base_url}/v2/models/{model}/infer"

    def metrics_url(self) -> str:
        return f"{self.base_url}/metrics"

    def request_headers(self) -> dict[str, str]:
        return {}

    def process_group(self) -> int | None:
        return self._group.pgid if self._group else None

    def notes(self) -> list[str]:
        return ["KServe has no token authorization; the server listens on 127.0.0.1 only"]

    def log_tail(self, lines: int = 30) -> str:
        return self._group.log_tail(lines) if self._group else ""
