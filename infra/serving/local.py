"""`aip serve`: package (cached), start a real server on loopback, wait for every model, serve or smoke-test.

The server runs in its own process group with a private work dir under `<out>/../serve/`. Ctrl-C
(SIGINT) or SIGTERM stops it in order; the work dir is removed afterwards unless the server failed,
in which case its logs are kept and their path printed.
"""

from __future__ import annotations

import shutil
import signal
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rich.console import Console
from rich.text import Text

from infra.serving.catalog import MODEL_HANDLERS, Catalog
from infra.serving.kserve_process import KServeServer
from infra.serving.local_server import LocalServer, ServedModel, ServerFailed
from infra.serving.package import DEFAULT_OUT, package_models
from infra.serving.problems import ServingError
from infra.serving.processes import port_is_free
from infra.serving.smoke import run_smoke, smoke_table
from infra.serving.torchserve_process import TorchServeServer

Runtime = Literal["torchserve", "kserve"]
RUNTIMES: tuple[Runtime, ...] = ("torchserve", "kserve")
EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130


class Interrupted(BaseException):
    """SIGTERM, turned into an exception so that the server is stopped on the way out (like Ctrl-C)."""


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
    """

    runtime: Runtime = "torchserve"
    models: Sequence[str] | None = None
    port: int = 0
    smoke: bool = False
    out: Path = DEFAULT_OUT
    token_auth: bool = True


def serve(options: ServeOptions, console: Console, err: Console, *, catalog: Catalog | None = None) -> int:
    """Run `aip serve`; returns the exit code. Raises ServingError for problems the user can fix."""
    catalog = catalog or Catalog(MODEL_HANDLERS)
    folders = catalog.select(options.models)
    if options.port and not port_is_free(options.port):  # before minutes of packaging, not after
        raise ServingError(f"port {options.port} on 127.0.0.1 is in use")
    with err.status("packaging…") as status:
        manifest = package_models(options.out, [f.name for f in folders], catalog=catalog,
                                  on_progress=lambda model, step: status.update(f"packaging {model}: {step}…"))
    served = [ServedModel(f, catalog.runtime_dir, manifest.models[f.name]) for f in folders]
    work_root = options.out.resolve().parent / "serve"
    work_root.mkdir(parents=True, exist_ok=True)
    work_dir = Path(tempfile.mkdtemp(prefix=f"{options.runtime}-", dir=work_root))
    server: LocalServer | None = None
    failed = False
    try:
        with _sigterm_interrupts():
            server = _server(options, served, work_dir)
            return _run(server, served, options, console, err)
    except ServerFailed as exc:
        failed = True
        # Text, not markup: the log lines quoted in the message are full of brackets ("[INFO ]").
        err.print(Text("error: ", style="bold red") + Text(f"{options.runtime} failed: {exc}"), highlight=False)
        return EXIT_FAILED
    except (KeyboardInterrupt, Interrupted):
        err.print("stopping…", highlight=False)
        return EXIT_INTERRUPTED if options.smoke else EXIT_OK
    finally:
        if server is not None:
            with _signals_ignored():
                server.stop()
        if failed:
            err.print(f"logs kept in {work_dir}", highlight=False)
        else:
            shutil.rmtree(work_dir, ignore_errors=True)
        _remove_if_empty(work_root)


def _run(server: LocalServer, served: Sequence[ServedModel], options: ServeOptions, console: Console,
         err: Console) -> int:
    started = time.monotonic()
    server.start()
    with err.status(f"starting {server.runtime} with {', '.join(m.name for m in served)}…"):
        server.wait_ready()
    err.print(f"{server.runtime} ready in {time.monotonic() - started:.1f} s (work dir {server.work_dir})",
              highlight=False)
    console.print(_endpoint_lines(server, served), highlight=False, soft_wrap=True)
    for note in server.notes():
        console.print(note, highlight=False, soft_wrap=True)
    if options.smoke:
        results = run_smoke(server, served)
        console.print(smoke_table(results, server.runtime))
        return EXIT_OK if all(r.ok for r in results) else EXIT_FAILED
    console.print("serving; Ctrl-C stops", highlight=False)
    while server.running():
        time.sleep(0.5)
    raise ServerFailed(f"the server exited on its own:\n{server.log_tail()}")


def _server(options: ServeOptions, served: Sequence[ServedModel], work_dir: Path) -> LocalServer:
    if options.runtime == "kserve":
        return KServeServer(served, work_dir, port=options.port)
    return TorchServeServer(served, work_dir, port=options.port, token_auth=options.token_auth)


def _endpoint_lines(server: LocalServer, served: Sequence[ServedModel]) -> str:
    """One line per endpoint, never truncated (URLs are for copying)."""
    versions = {m.name: m.package.version for m in served}
    lines = [f"{server.runtime} on 127.0.0.1:"]
    for e in server.endpoints():
        version = f" {versions[e.model]}" if e.model in versions else ""
        lines.append(f"  {e.method:<4} {e.url}  ({e.what}{', ' + e.model + version if e.model != '*' else ''})")
    return "\n".join(lines)


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    def interrupt(signum: int, frame: object) -> None:
        raise Interrupted()

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def _signals_ignored() -> Iterator[None]:
    """A second Ctrl-C while stopping would leave the server half-stopped: finish stopping first."""
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _remove_if_empty(folder: Path) -> None:
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
