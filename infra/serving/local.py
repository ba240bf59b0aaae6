"""`aip serve`: package (cached), start a real server on loopback, wait for every model, serve or smoke-test.

The server runs in its own process group with a private work dir under `<out>/.serve/`. Ctrl-C
(SIGINT), SIGTERM, SIGHUP (the terminal closed) and SIGQUIT all stop it in order; the work dir is
removed afterwards unless the server failed, in which case its logs are kept and their path printed.
With `--with-prometheus`, a Prometheus (infra/serving/local_prometheus.py) scrapes the server with the
platform's rules, from a folder of the same work dir, and is stopped first; it sends firing alerts to an
Alertmanager (infra/serving/local_alertmanager.py) that routes them with a stack's routing config, to
`--alert-webhook` when given.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import tempfile
import termios
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx
from rich.console import Console
from rich.text import Text

from infra.config.alerts import AlertsConfig
from infra.serving.catalog import MODEL_HANDLERS, Catalog
from infra.serving.kserve_process import KServeServer
from infra.serving.local_alertmanager import (
    AlertmanagerFailed,
    AlertmanagerTools,
    LocalAlertmanager,
    find_alertmanager,
    local_alertmanager_config,
    local_alerts,
    stack_alerts,
)
from infra.serving.local_prometheus import (
    LocalPrometheus,
    PrometheusFailed,
    PrometheusTools,
    ScrapeTarget,
    find_prometheus,
)
from infra.serving.local_server import LocalServer, ServedModel, ServerFailed
from infra.serving.package import DEFAULT_OUT, package_models
from infra.serving.problems import ServingError
from infra.serving.processes import port_is_free
from infra.serving.smoke import run_smoke, smoke_table
from infra.serving.torchserve_process import TorchServeServer

Runtime = Literal["torchserve", "kserve"]
RUNTIMES: tuple[Runtime, ...] = ("torchserve", "kserve")
EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130
# The server runs in a session of its own (so a Ctrl-C reaches only `aip`), so none of these reaches it
# from the terminal: `aip` must stop it on each, or it is orphaned with its work dir.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
WORK_ROOT = ".serve"


class Interrupted(BaseException):
    """A stop signal, turned into an exception so that the server is stopped on the way out."""


@dataclass(frozen=True)
class ServeOptions:
    """What `aip serve` was asked for.

    Attributes:
        runtime: `torchserve` (the cluster's runtime) or `kserve` (the predictors' ModelServer).
        models: Model names; None serves every model.
        port: Main HTTP port; 0 picks a free one.
        smoke: Send every example, report, stop, and exit 0 or 1.
        out: Where packages are built (and cached).
        token_auth: TorchServe's token authorization.
        with_prometheus: Also run Prometheus on loopback, scraping the server with the platform's rules, and
            Alertmanager, which Prometheus sends firing alerts to.
        alert_webhook: Where the local Alertmanager's receivers post notifications; None: nowhere.
        alerts_stack: The platform stack whose `observability.alerts` routes them.
    """

    runtime: Runtime = "torchserve"
    models: Sequence[str] | None = None
    port: int = 0
    smoke: bool = False
    out: Path = DEFAULT_OUT
    token_auth: bool = True
    with_prometheus: bool = False
    alert_webhook: str | None = None
    alerts_stack: str = "prod"


def serve(options: ServeOptions, console: Console, err: Console, *, catalog: Catalog | None = None) -> int:
    """Run `aip serve`; returns the exit code. Raises ServingError for problems the user can fix."""
    catalog = catalog or Catalog(MODEL_HANDLERS)
    folders = catalog.select(options.models)
    if options.port and not port_is_free(options.port):  # before minutes of packaging, not after
        raise ServingError(f"port {options.port} on 127.0.0.1 is in use")
    tools = find_prometheus() if options.with_prometheus else None  # a missing package, also before packaging
    alerting = _alerting(options) if options.with_prometheus else None
    with err.status("packaging…") as status:
        manifest = package_models(options.out, [f.name for f in folders], catalog=catalog,
                                  on_progress=lambda model, step: status.update(f"packaging {model}: {step}…"))
    served = [ServedModel(f, catalog.runtime_dir, manifest.models[f.name]) for f in folders]
    work_root = options.out.resolve() / WORK_ROOT
    work_dir: Path | None = None
    server: LocalServer | None = None
    prometheus: LocalPrometheus | None = None
    alertmanager: LocalAlertmanager | None = None
    failed = False
    with _stop_signals_interrupt():
        try:
            work_root.mkdir(parents=True, exist_ok=True)
            work_dir = Path(tempfile.mkdtemp(prefix=f"{options.runtime}-", dir=work_root))
            server = _server(options, served, work_dir)
            if tools is not None:
                prometheus = _prometheus(work_dir, tools)
            if alerting is not None:
                alertmanager = LocalAlertmanager(work_dir / "alertmanager", tools=alerting[0])
                alertmanager.start(local_alertmanager_config(alerting[1], options.alert_webhook,
                                                             alertmanager.work_dir))
                alertmanager.wait_ready()
                if prometheus is not None:
                    prometheus.alertmanagers = [alertmanager.address]
            return _run(server, served, options, console, err, prometheus)
        except ServerFailed as exc:
            failed = True
            # Text, not markup: the log lines quoted in the message are full of brackets ("[INFO ]").
            _print(err, Text("error: ", style="bold red") + Text(f"{options.runtime} failed: {exc}"))
            return EXIT_FAILED
        except PrometheusFailed as exc:
            failed = True
            _print(err, Text("error: ", style="bold red") + Text(f"prometheus failed: {exc}"))
            return EXIT_FAILED
        except AlertmanagerFailed as exc:
            failed = True
            _print(err, Text("error: ", style="bold red") + Text(f"alertmanager failed: {exc}"))
            return EXIT_FAILED
        except (KeyboardInterrupt, Interrupted):
            _print(err, "stopping…")
            return EXIT_INTERRUPTED if options.smoke else EXIT_OK
        finally:
            with _signals_ignored():
                if prometheus is not None:  # first: it would only record the server going away
                    prometheus.stop()
                if alertmanager is not None:
                    alertmanager.stop()
                if server is not None:
                    server.stop()
                if failed:
                    _print(err, f"logs kept in {work_dir}")
                elif work_dir is not None:
                    shutil.rmtree(work_dir, ignore_errors=True)
                _remove_if_empty(work_root)


def _run(server: LocalServer, served: Sequence[ServedModel], options: ServeOptions, console: Console,
         err: Console, prometheus: LocalPrometheus | None = None) -> int:
    started = time.monotonic()
    server.start()
    with err.status(f"starting {server.runtime} with {', '.join(m.name for m in served)}…"):
        server.wait_ready()
    err.print(f"{server.runtime} ready in {time.monotonic() - started:.1f} s (work dir {server.work_dir})",
              highlight=False)
    console.print(_endpoint_lines(server, served), highlight=False, soft_wrap=True)
    for note in server.notes():
        console.print(note, highlight=False, soft_wrap=True)
    if prometheus is not None:
        _start_prometheus(prometheus, server, served, console, err)
    if options.smoke:
        results = run_smoke(server, served)
        console.print(smoke_table(results, server.runtime))
        return EXIT_OK if all(r.ok for r in results) else EXIT_FAILED
    console.print("serving; Ctrl-C stops", highlight=False)
    while server.running():
        if prometheus is not None and not prometheus.running():
            raise PrometheusFailed(f"Prometheus exited on its own:\n{prometheus.log_tail()}")
        time.sleep(0.5)
    raise ServerFailed(f"the server exited on its own:\n{server.log_tail()}")


def _server(options: ServeOptions, served: Sequence[ServedModel], work_dir: Path) -> LocalServer:
    if options.runtime == "kserve":
        return KServeServer(served, work_dir, port=options.port)
    return TorchServeServer(served, work_dir, port=options.port, token_auth=options.token_auth)


def _alerting(options: ServeOptions) -> tuple[AlertmanagerTools, AlertsConfig]:
    """Alertmanager's tools and the routing, both before packaging: a missing package or a broken stack
    file is reported in seconds."""
    from pydantic import ValidationError

    tools = find_alertmanager()
    alerts = stack_alerts(options.alerts_stack) if options.alert_webhook else AlertsConfig()
    try:
        local_alerts(alerts, options.alert_webhook)
    except ValidationError:
        raise ServingError(f"--alert-webhook {options.alert_webhook}: must be an https:// URL, or http:// on "
                           "loopback (127.0.0.1, localhost)") from None
    return tools, alerts


def _prometheus(work_dir: Path, tools: PrometheusTools) -> LocalPrometheus:
    # Imported here: the rule files' module is only needed with --with-prometheus.
    from infra.observability.rules import rule_files

    return LocalPrometheus(work_dir / "prometheus", rule_files=rule_files(), tools=tools)


def _start_prometheus(prometheus: LocalPrometheus, server: LocalServer, served: Sequence[ServedModel],
                      console: Console, err: Console) -> None:
    """Start Prometheus once the server is ready, and wait until its first scrape of the server succeeded."""
    started = time.monotonic()
    with err.status("starting prometheus…"):
        prometheus.start([ScrapeTarget.of(server, [m.name for m in served])], prometheus.alertmanagers)
        prometheus.wait_ready()
        prometheus.wait_targets_up()
        try:
            groups = prometheus.rule_groups()
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            raise PrometheusFailed(f"cannot read its rules: {exc}\n{prometheus.log_tail()}") from None
    err.print(f"prometheus ready in {time.monotonic() - started:.1f} s, every target up "
              f"(work dir {prometheus.work_dir})", highlight=False)
    console.print(_prometheus_lines(prometheus, groups), highlight=False, soft_wrap=True)


def _prometheus_lines(prometheus: LocalPrometheus, groups: Sequence[dict[str, Any]]) -> str:
    """Where to look: the UI, the targets page, the alerts page (URLs for copying, never truncated)."""
    jobs = ", ".join(t.job for t in prometheus.targets)
    rules = sum(len(g.get("rules", [])) for g in groups)
    lines = [f"prometheus on 127.0.0.1 (scrapes and evaluates every {prometheus.interval_s} s):",
             f"  GET  {prometheus.url}/  (UI)",
             f"  GET  {prometheus.page('targets')}  (targets: {jobs}, up)",
             f"  GET  {prometheus.page('alerts')}  (alerts: {_count(rules, 'rule')} in {_count(len(groups), 'group')})"]
    if prometheus.alertmanagers:
        lines.append(f"alertmanager on 127.0.0.1: http://{prometheus.alertmanagers[0]}/  (firing alerts go there)")
    return "\n".join(lines)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _endpoint_lines(server: LocalServer, served: Sequence[ServedModel]) -> str:
    """One line per endpoint, never truncated (URLs are for copying)."""
    versions = {m.name: m.package.version for m in served}
    lines = [f"{server.runtime} on 127.0.0.1:"]
    for e in server.endpoints():
        version = f" {versions[e.model]}" if e.model in versions else ""
        lines.append(f"  {e.method:<4} {e.url}  ({e.what}{', ' + e.model + version if e.model != '*' else ''})")
    return "\n".join(lines)


@contextmanager
def _stop_signals_interrupt() -> Iterator[None]:
    """Each stop signal raises Interrupted once; later ones are ignored until the handlers are restored.

    A second signal while stopping would leave the server half-stopped, so the first one already makes
    every stop signal ignored. On SIGHUP the terminal may be gone: output then goes to /dev/null, so that
    printing "stopping…" cannot fail and skip the clean-up.
    """
    def interrupt(signum: int, frame: object) -> None:
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        if signum == signal.SIGHUP:
            _detach_from_hung_up_terminal()
        raise Interrupted()

    previous = {sig: signal.signal(sig, interrupt) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def _signals_ignored() -> Iterator[None]:
    """Stopping the server and removing its work dir must not be cut short by another signal."""
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _detach_from_hung_up_terminal() -> None:
    """Point stdout and stderr at /dev/null where they are a terminal that has hung up (writes fail: EIO)."""
    for fd in (1, 2):
        try:
            termios.tcgetattr(fd)
        except termios.error as exc:
            if exc.args and exc.args[0] == errno.EIO:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, fd)
                os.close(devnull)
        except (OSError, ValueError):
            continue


def _print(console: Console, message: str | Text) -> None:
    """Print a status line; a terminal that is gone must not stop the clean-up."""
    with suppress(OSError):
        console.print(message, highlight=False)


def _remove_if_empty(folder: Path) -> None:
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
