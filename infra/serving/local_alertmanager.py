"""`aip serve --with-prometheus`: Debian's Alertmanager on loopback, fed by the local Prometheus, routing
with the cluster's own routing config.

The local alertmanager.yml comes from the same function as the cluster's (`monitoring.alertmanager_config`),
given a stack's `observability.alerts` in which every receiver is swapped for a webhook of the same name
pointing at one local URL (`local_alerts`): the routes, their order, grouping and inhibition are the
cluster's; only where notifications go differs, and the webhook payload's `receiver` says which receiver the
cluster would have notified. Without a webhook URL the receivers notify no one and alerts show in
Alertmanager's UI only.

Work dir layout (a folder of the server's work dir, removed with it):

    alertmanager.yml   generated, checked with `amtool check-config` before start (when amtool is there)
    data/              silences and the notification log (`--storage.path`)
    alertmanager.log   Alertmanager's output

Clustering (gossip between replicas, which listens on 0.0.0.0:9094 by default) is off: one replica, on
127.0.0.1 only.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from infra.config.alerts import AlertsConfig
from infra.serving.local_prometheus import _env
from infra.serving.local_server import http_client
from infra.serving.problems import ServingError
from infra.serving.processes import LOOPBACK, ProcessGroup, free_ports

READY_TIMEOUT_S = 30.0
STOP_GRACE_S = 10.0
# Debian names the binary prometheus-alertmanager; upstream builds call it alertmanager.
COMMANDS = ("prometheus-alertmanager", "alertmanager")
DEFAULT_RECEIVER = "default"
INSTALL_HINT = "install Debian's prometheus-alertmanager package (make install does)"


class AlertmanagerFailed(Exception):
    """Alertmanager rejected its config or exited; the message ends with its log lines."""


@dataclass(frozen=True)
class AlertmanagerTools:
    alertmanager: Path
    amtool: Path | None


def find_alertmanager(path: str | None = None) -> AlertmanagerTools:
    """Alertmanager on PATH (or `path`); ServingError naming the package when it is missing."""
    found = next((shutil.which(c, path=path) for c in COMMANDS if shutil.which(c, path=path)), None)
    if found is None:
        raise ServingError(f"--with-prometheus needs Alertmanager (`{COMMANDS[0]}`), which is not installed: "
                           f"{INSTALL_HINT}")
    amtool = shutil.which("amtool", path=path)
    return AlertmanagerTools(alertmanager=Path(found), amtool=Path(amtool) if amtool else None)


def local_alerts(alerts: AlertsConfig, webhook_url: str | None) -> AlertsConfig:
    """The stack's routing with every receiver (and the default one) a webhook to `webhook_url`, or, without a
    URL, no receiver at all (alerts stay in Alertmanager's UI)."""
    if webhook_url is None:
        return AlertsConfig()
    default = alerts.default_receiver or DEFAULT_RECEIVER
    names = [r.name for r in alerts.receivers]
    names += [default] if default not in names else []
    return AlertsConfig.model_validate({
        "receivers": [{"name": name, "type": "webhook", "url": webhook_url} for name in names],
        "routes": [route.model_dump(by_alias=True, exclude_none=True) for route in alerts.routes],
        "defaultReceiver": default,
    })


def local_alertmanager_config(alerts: AlertsConfig, webhook_url: str | None, work_dir: Path) -> dict[str, Any]:
    """alertmanager.yml for the local Alertmanager: the cluster's routing (see the module docstring)."""
    # Imported here: the component module brings the Kubernetes SDK, which nothing else of `aip serve` needs.
    from infra.components.monitoring import alertmanager_config

    config = alertmanager_config(local_alerts(alerts, webhook_url), credentials_dir=str(work_dir / "credentials"))
    config["templates"] = []  # the cluster's template folder does not exist here
    return config


def stack_alerts(stack: str) -> AlertsConfig:
    """A platform stack's `observability.alerts`, read offline (its secrets stay placeholders)."""
    from infra.config import ConfigError, parse_stack_config
    from infra.preview.project import Project, ProjectError

    try:
        project = Project.find(Path(__file__).resolve().parent)
        values = project.stack_config(stack)
        config = parse_stack_config(values.values, project=project.name, stack=stack,
                                    secret_keys=values.secret_keys, secure_paths=values.secure_paths)
    except (ProjectError, ConfigError) as exc:
        raise ServingError(f"--alerts-stack {stack}: {exc}") from None
    observability = getattr(config, "observability", None)
    if observability is None:
        raise ServingError(f"--alerts-stack {stack}: a team stack; routing is a platform stack's")
    return observability.alerts


class LocalAlertmanager:
    """Alertmanager on 127.0.0.1 (a free port), in a process group of its own, with private storage."""

    def __init__(self, work_dir: Path, *, tools: AlertmanagerTools | None = None):
        self.work_dir = work_dir
        self.tools = tools or find_alertmanager()
        self.port = 0
        self._group: ProcessGroup | None = None
        self._client = http_client(timeout=10.0)

    @property
    def config_file(self) -> Path:
        return self.work_dir / "alertmanager.yml"

    @property
    def log_file(self) -> Path:
        return self.work_dir / "alertmanager.log"

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def address(self) -> str:
        """`127.0.0.1:<port>`, as Prometheus' alerting config names it."""
        return f"{LOOPBACK}:{self.port}"

    def start(self, config: dict[str, Any]) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        self._check_config()
        self.port = free_ports(1)[0]
        self._group = ProcessGroup(
            [str(self.tools.alertmanager), f"--config.file={self.config_file}",
             f"--storage.path={self.work_dir / 'data'}", f"--web.listen-address={self.address}",
             "--cluster.listen-address="],
            cwd=self.work_dir, env=_env(), log_file=self.log_file)

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready():
            if not self.running():
                raise AlertmanagerFailed(f"Alertmanager exited on start:\n{self.log_tail()}")
            if time.monotonic() >= deadline:
                raise AlertmanagerFailed(f"timed out after {timeout:.0f} s waiting for Alertmanager to be ready:\n"
                                         f"{self.log_tail()}")
            time.sleep(0.2)

    def ready(self) -> bool:
        try:
            return self._client.get(f"{self.url}/-/ready").status_code == 200
        except httpx.HTTPError:
            return False

    def alerts(self) -> list[dict[str, Any]]:
        """`/api/v2/alerts`: what Alertmanager holds now."""
        answer = self._client.get(f"{self.url}/api/v2/alerts")
        answer.raise_for_status()
        return list(answer.json())

    def running(self) -> bool:
        return self._group is not None and self._group.leader_alive()

    def process_group(self) -> int | None:
        return self._group.pgid if self._group else None

    def stop(self) -> None:
        self._client.close()
        if self._group is not None:
            self._group.stop(grace=STOP_GRACE_S)

    def log_tail(self, lines: int = 30) -> str:
        return self._group.log_tail(lines) if self._group else ""

    def _check_config(self) -> None:
        if self.tools.amtool is None:
            return
        try:
            check = subprocess.run([str(self.tools.amtool), "check-config", str(self.config_file)],
                                   capture_output=True, text=True, timeout=60, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise AlertmanagerFailed(f"amtool check-config could not run: {exc}") from None
        if check.returncode != 0:
            raise AlertmanagerFailed(f"amtool check-config rejected {self.config_file}:\n"
                                     f"{(check.stdout + check.stderr).strip()}")
