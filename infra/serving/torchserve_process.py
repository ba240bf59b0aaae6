"""A real TorchServe (Java frontend + Python workers) on loopback, with the config the cluster gets.

Work dir layout (nothing is written outside it):

    config/config.properties   the cluster's file with loopback addresses, free ports, a private tmp
    model-store/<model>.mar    the packaged archives
    tmp/                       TMPDIR and java.io.tmpdir: pid file, worker sockets, unpacked archives
                               (java.io.tmpdir moves to a private folder of the system temp dir, removed
                               on stop, when the worker sockets' paths would pass the 107 bytes AF_UNIX allows)
    logs/                      TorchServe's logs (LOG_LOCATION, METRICS_LOCATION) and stdout
    key_file.json              the tokens, when token authorization is on (TorchServe writes it to cwd)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import httpx

from infra.serving.config_properties import (
    SnapshotModel,
    local_settings,
    render_config_properties,
)
from infra.serving.local_server import (
    READY_TIMEOUT_S,
    Endpoint,
    ServedModel,
    ServerFailed,
    child_env,
    http_client,
    wait_until,
)
from infra.serving.manifest import mar_path
from infra.serving.problems import ServingError
from infra.serving.processes import ProcessGroup, free_ports, port_is_free

KEY_FILE = "key_file.json"
STOP_TIMEOUT_S = 60
# TorchServe's worker sockets are `<java.io.tmpdir>/.ts.sock.<port>`; a Unix socket path has 107 bytes at most.
SOCKET_PATH_MAX = 107
SOCKET_SUFFIX = "/.ts.sock.65535"


class TorchServeServer:
    """TorchServe serving the given models from one model store (see the module docstring).

    Args:
        models: The models, packaged.
        work_dir: An empty folder this server owns.
        port: Inference port; 0 picks a free one. Every other listener gets a free port.
        token_auth: TorchServe's token authorization (the cluster runs without it, see README).
    """

    runtime = "torchserve"

    def __init__(self, models: Sequence[ServedModel], work_dir: Path, *, port: int = 0, token_auth: bool = True):
        self.models = list(models)
        self.work_dir = work_dir
        self.token_auth = token_auth
        ports = free_ports(5)
        if port:
            if port in ports[1:] or not port_is_free(port):
                raise ServingError(f"port {port} on 127.0.0.1 is in use")
            ports[0] = port
        self._java_tmp = _java_tmp_dir(work_dir / "tmp")
        self.settings = local_settings(ports=ports, model_store=str(work_dir / "model-store"),
                                       tmp_dir=str(self._java_tmp), token_auth=token_auth)
        self.listeners = self.settings.listeners
        self._group: ProcessGroup | None = None
        self._client = http_client()

    # -- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> None:
        for folder in ("tmp", "logs", "model-store", "config"):
            (self.work_dir / folder).mkdir(parents=True, exist_ok=True)
        store = self.work_dir / "model-store"
        for model in self.models:
            shutil.copyfile(model.package.files[mar_path(model.name)], store / f"{model.name}.mar")
        config = self.work_dir / "config" / "config.properties"
        snapshot = [SnapshotModel(m.name, m.package.version, m.folder.config) for m in self.models]
        config.write_text(render_config_properties(snapshot, self.settings), encoding="utf-8")
        self._group = ProcessGroup(
            # --foreground: the launcher stays the group leader until Java exits; --ncs: no config snapshots.
            [self._torchserve(), "--start", "--foreground", "--ncs", "--model-store", str(store),
             "--ts-config", str(config)],
            cwd=self.work_dir, env=self._env(), log_file=self.work_dir / "logs" / "stdout.log")

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        """/ping answers Healthy (the cluster's readiness probe) and every model has a READY worker."""
        wait_until(self.ready, timeout=timeout, alive=self.running, what="TorchServe and its models",
                   log_tail=self.log_tail)

    def ready(self) -> bool:
        if self.token_auth and not (self.work_dir / KEY_FILE).is_file():
            return False
        try:
            ping = self._client.get(f"{self.listeners.inference_url}/ping", headers=self.request_headers())
            if ping.status_code != 200 or ping.json().get("status") != "Healthy":
                return False
            return all(self._model_ready(m.name) for m in self.models)
        except (httpx.HTTPError, ValueError, ServerFailed):
            return False

    def running(self) -> bool:
        return self._group is not None and self._group.leader_alive()

    def stop(self) -> None:
        """`torchserve --stop` (same TMPDIR and cwd, so it finds the pid file), then the process group."""
        self._client.close()
        try:
            if self._group is None:
                return
            if self._group.group_alive():
                subprocess.run([self._torchserve(), "--stop", "--foreground"], cwd=self.work_dir, env=self._env(),
                               capture_output=True, timeout=STOP_TIMEOUT_S + 10, check=False)
            self._group.stop()
        finally:
            if not self._java_tmp.is_relative_to(self.work_dir):
                shutil.rmtree(self._java_tmp, ignore_errors=True)

    # -- what users call ----------------------------------------------------------------------------

    def endpoints(self) -> list[Endpoint]:
        inference = self.listeners.inference_url
        found = []
        for model in self.models:
            found.append(Endpoint(model.name, "POST", f"{inference}/predictions/{model.name}", "TorchServe"))
            found.append(Endpoint(model.name, "POST", self.v1_url(model.name), "KServe v1 route of TorchServe"))
        found.append(Endpoint("*", "GET", f"{inference}/ping", "health"))
        found.append(Endpoint("*", "GET", f"{self.listeners.management_url}/models", "management (read-only)"))
        found.append(Endpoint("*", "GET", self.metrics_url(), "Prometheus metrics"))
        return found

    def v1_url(self, model: str) -> str:
        return f"{self.listeners.inference_url}/v1/models/{model}:predict"

    def predictions_url(self, model: str) -> str:
        return f"{self.listeners.inference_url}/predictions/{model}"

    def metrics_url(self) -> str:
        return f"{self.listeners.metrics_url}/metrics"

    def request_headers(self) -> dict[str, str]:
        """The inference token, when token authorization is on."""
        key = self._key("inference")
        return {"Authorization": f"Bearer {key}"} if key else {}

    def management_headers(self) -> dict[str, str]:
        key = self._key("management")
        return {"Authorization": f"Bearer {key}"} if key else {}

    def process_group(self) -> int | None:
        return self._group.pgid if self._group else None

    def notes(self) -> list[str]:
        if not self.token_auth:
            return ["token authorization is off (--no-token-auth), as in the cluster"]
        return [f"token authorization is on: send 'Authorization: Bearer <inference key>' from {self.key_file} "
                "(TorchServe expires the keys after 60 minutes; restart to get new ones)"]

    @property
    def key_file(self) -> Path:
        return self.work_dir / KEY_FILE

    def log_tail(self, lines: int = 30) -> str:
        log = self.work_dir / "logs" / "ts_log.log"
        if log.is_file():
            return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
        return self._group.log_tail(lines) if self._group else ""

    # -- helpers ------------------------------------------------------------------------------------

    def _model_ready(self, model: str) -> bool:
        answer = self._client.get(f"{self.listeners.management_url}/models/{model}", headers=self.management_headers())
        if answer.status_code != 200:
            return False
        versions = answer.json()
        return any(worker.get("status") == "READY" for version in versions for worker in version.get("workers", []))

    def _key(self, kind: str) -> str | None:
        if not self.token_auth:
            return None
        try:
            return json.loads(self.key_file.read_text())[kind]["key"]
        except (OSError, ValueError, KeyError) as exc:
            raise ServerFailed(f"cannot read the {kind} token from {self.key_file}: {exc}") from None

    def _env(self) -> dict[str, str]:
        logs = str(self.work_dir / "logs")
        return child_env(self.work_dir, {"LOG_LOCATION": logs, "METRICS_LOCATION": logs})

    @staticmethod
    def _torchserve() -> str:
        beside = Path(sys.executable).parent / "torchserve"
        found = str(beside) if beside.is_file() else shutil.which("torchserve")
        if not found:
            raise ServingError("the `torchserve` command is not installed: pip install -e '.[serving]'")
        return found


def _java_tmp_dir(preferred: Path) -> Path:
    """`preferred` when worker sockets fit in it, else a new private folder of the system temp dir."""
    if len(os.fsencode(preferred)) + len(SOCKET_SUFFIX) <= SOCKET_PATH_MAX:
        return preferred
    short = Path(tempfile.mkdtemp(prefix="aip-ts-"))
    if len(os.fsencode(short)) + len(SOCKET_SUFFIX) > SOCKET_PATH_MAX:
        short.rmdir()
        raise ServingError(f"TorchServe's worker sockets do not fit under {preferred} or {short.parent} "
                           f"(at most {SOCKET_PATH_MAX} bytes): use a shorter --out or TMPDIR")
    return short
