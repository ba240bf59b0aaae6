"""A real KServe ModelServer on loopback hosting every model's predictor (infra/serving/kserve_host.py).

Work dir layout (nothing is written outside it):

    kserve-spec.json           what the child serves: models, folders, weights, host and ports (REST, gRPC)
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
from typing import Any

import grpc
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

GRPC_SERVICE = "inference.GRPCInferenceService"


def grpc_v2() -> tuple[Any, Any]:
    """KServe's generated gRPC v2 messages and stubs (``grpc_predict_v2_pb2``, ``..._pb2_grpc``).

    Imported on first use: importing kserve takes about a second, which only ``--runtime kserve`` pays.
    """
    from kserve.protocol.grpc import grpc_predict_v2_pb2, grpc_predict_v2_pb2_grpc

    return grpc_predict_v2_pb2, grpc_predict_v2_pb2_grpc


class KServeServer:
    """One KServe ModelServer process serving the given models over REST (v1 and v2) and gRPC v2.

    Args:
        models: The models, packaged.
        work_dir: An empty folder this server owns.
        port: HTTP port; 0 picks a free one. The gRPC port is always a free one.
        interpreter_args: Options of the child's interpreter, before the host script (e.g. a profiler).

    Attributes:
        grpc_port: Port of KServe's ``inference.GRPCInferenceService`` on 127.0.0.1.
        grpc_target: ``127.0.0.1:<grpc_port>``, what ``grpc.insecure_channel`` takes.
    """

    runtime = "kserve"

    def __init__(self, models: Sequence[ServedModel], work_dir: Path, *, port: int = 0,
                 interpreter_args: Sequence[str] = ()):
        self.models = list(models)
        self.interpreter_args = tuple(interpreter_args)
        self.work_dir = work_dir
        if port and not port_is_free(port):
            raise ServingError(f"port {port} on 127.0.0.1 is in use")
        self.port = port or free_ports(1)[0]
        self.base_url = f"http://{LOOPBACK}:{self.port}"
        self.grpc_port = next(p for p in free_ports(2) if p != self.port)
        self.grpc_target = f"{LOOPBACK}:{self.grpc_port}"
        self._grpc_channel: grpc.Channel | None = None
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
                            "max_batch_instances": model.folder.config.max_batch_instances,
                            "batch_size": model.folder.config.batch_size,
                            "workers": model.folder.config.min_workers,
                            "torch_threads": model.folder.config.torch_threads})
        spec = self.work_dir / "kserve-spec.json"
        spec.write_text(json.dumps({"host": LOOPBACK, "port": self.port, "grpc_port": self.grpc_port,
                                    "models": entries}, indent=2))
        command = [sys.executable, *self.interpreter_args, kserve_host.__file__, str(spec)]
        self._group = ProcessGroup(command, cwd=self.work_dir,
                                   env=child_env(self.work_dir), log_file=self.work_dir / "logs" / "stdout.log")

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        """/v2/health/ready and every /v2/models/<m>/ready answer 200, and gRPC ServerReady and every
        ModelReady answer ready."""
        wait_until(self.ready, timeout=timeout, alive=self.running, what="KServe and its models",
                   log_tail=self.log_tail)

    def ready(self) -> bool:
        try:
            paths = ["/v2/health/ready", *(f"/v2/models/{m.name}/ready" for m in self.models)]
            if not all(self._client.get(self.base_url + path).status_code == 200 for path in paths):
                return False
        except httpx.HTTPError:
            return False
        return self.grpc_ready()

    def grpc_ready(self) -> bool:
        """gRPC ServerReady and every model's ModelReady answer ``ready: true``."""
        messages, stubs = grpc_v2()
        stub = stubs.GRPCInferenceServiceStub(self.grpc_channel())
        try:
            return stub.ServerReady(messages.ServerReadyRequest(), timeout=10).ready and all(
                stub.ModelReady(messages.ModelReadyRequest(name=m.name), timeout=10).ready for m in self.models)
        except grpc.RpcError:
            return False

    def grpc_channel(self) -> grpc.Channel:
        """A channel to the gRPC port, shared by this object's calls and closed by :meth:`stop`."""
        if self._grpc_channel is None:
            # No proxy from the environment may see loopback traffic (grpc honours http_proxy).
            self._grpc_channel = grpc.insecure_channel(self.grpc_target, options=[("grpc.enable_http_proxy", 0)])
        return self._grpc_channel

    def running(self) -> bool:
        return self._group is not None and self._group.leader_alive()

    def stop(self) -> None:
        """SIGTERM the process group (uvicorn, then the gRPC server, shut down gracefully), SIGKILL what is left."""
        self._client.close()
        if self._grpc_channel is not None:
            self._grpc_channel.close()
            self._grpc_channel = None
        if self._group is not None:
            self._group.stop()

    def endpoints(self) -> list[Endpoint]:
        found = []
        for model in self.models:
            found.append(Endpoint(model.name, "POST", self.v1_url(model.name), "KServe v1"))
            found.append(Endpoint(model.name, "POST", self.v2_url(model.name), "KServe v2"))
            found.append(Endpoint(model.name, "gRPC", self.grpc_target, f"KServe v2 gRPC {GRPC_SERVICE}/ModelInfer"))
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
        return ["KServe has no token authorization; the server listens on 127.0.0.1 only (REST and gRPC)"]

    def log_tail(self, lines: int = 30) -> str:
        return self._group.log_tail(lines) if self._group else ""
