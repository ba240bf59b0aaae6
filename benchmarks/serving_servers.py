"""The servers of benchmarks/serving.py: one TorchServe and one KServe ModelServer, each hosting every model,
and one more server per tuning set-up (`--variants`, serving_variants.py).

All run on loopback for the whole run (infra.serving.torchserve_process, infra.serving.kserve_process):
TorchServe with the generated config.properties (workers and dynamic batching from each model's
`model-config.yaml`, token authorization on as with `aip serve`), KServe with its shipped settings; a
variant's server with its overrides applied to every model. They are started one after the other, so
each ready time (start to every model ready) is measured alone. A `Route` is how the load generator
reaches one model through one target; a target the server does not offer for a model is reported with
the reason instead. Everything is stopped in `stop`, and its ports are checked to be free afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from serving_client import (
    BINARY_HEADER,
    GrpcSession,
    HttpConnection,
    HttpSession,
    HttpxSession,
    grpc_request,
    http_request,
    v1_body,
    v2_binary_body,
    v2_tensors,
    verify_grpc,
    verify_v1,
    verify_v2_rest,
)
from serving_load import Session, TreeSampler, percentile, tree_cpu_by_name
from serving_models import BenchModel
from serving_plan import KSERVE_V2_BINARY, KSERVE_V2_GRPC, SHIPPED, Target, targets_with
from serving_variants import Variant, variant_model

from infra.serving.catalog import ModelConfig
from infra.serving.kserve_process import KServeServer
from infra.serving.local_server import LocalServer, http_client
from infra.serving.processes import LOOPBACK
from infra.serving.torchserve_process import TorchServeServer

READY_TIMEOUT_S = 180.0
LOG_WAIT_S = 3.0


@contextmanager
def environ(updates: Mapping[str, str]) -> Iterator[None]:
    """os.environ with `updates` while the servers are started (their processes copy it)."""
    saved = {key: os.environ.get(key) for key in updates}
    os.environ.update(updates)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@dataclass(frozen=True)
class Route:
    """One model behind one target: what a load phase needs.

    Attributes:
        target: Runtime and protocol.
        model: Model name.
        pids: Process groups of the server behind it.
        log_files: Where its handlers' per-request records go.
        open_session: The session of load thread i (it sends instance i of the model's pool).
        open_httpx_session: The same request through httpx, for HTTP targets (client comparison).
        verify: What is wrong with one answer of a one-instance request, or None.
    """

    target: Target
    model: str
    pids: tuple[int, ...]
    log_files: tuple[Path, ...]
    open_session: Callable[[int], Session]
    verify: Callable[[Any], str | None]
    open_httpx_session: Callable[[int], Session] | None = None


@dataclass
class Setup:
    """One server of the run and the models as it hosts them.

    Attributes:
        name: The runtime's name for its shipped settings, else the variant's (what `Target.server` gives).
        runtime: `torchserve` or `kserve`.
        models: Every model, with the config this server applies.
        server: The server.
        variant: The overrides of a tuning set-up; None for the shipped settings.
    """

    name: str
    runtime: str
    models: dict[str, BenchModel]
    server: LocalServer
    variant: Variant | None = None

    def describe(self) -> dict[str, Any]:
        if self.variant is None:
            return {"runtime": self.runtime, "setup": SHIPPED, "overrides": {},
                    "description": "each model's model-config.yaml as shipped"}
        return {"runtime": self.runtime, "setup": self.variant.name, "overrides": self.variant.yaml_overrides(),
                "description": self.variant.description}


RUNTIMES = ("torchserve", "kserve")


class Servers:
    """TorchServe and KServe hosting `models` at their shipped settings, and one server per variant, for the whole run.

    Args:
        models: The packaged models.
        work_root: Folder for the servers' work dirs (and the variants' archives).
        threads: OMP_NUM_THREADS of the server processes; None leaves torch's default.
        variants: Tuning set-ups, each served by a server of its own (serving_variants.py).
    """

    def __init__(self, models: Mapping[str, BenchModel], work_root: Path, threads: int | None = None,
                 variants: Sequence[Variant] = ()) -> None:
        self.models = dict(models)
        self.threads = threads
        work_root.mkdir(parents=True, exist_ok=True)
        self.setups: dict[str, Setup] = {}
        for runtime in RUNTIMES:
            self._add(Setup(runtime, runtime, self.models, self._server(runtime, runtime, self.models, work_root)))
        for variant in variants:
            hosted = {name: variant_model(model, variant, work_root / "archives")
                      for name, model in self.models.items()}
            self._add(Setup(variant.name, variant.runtime, hosted,
                            self._server(variant.runtime, variant.name, hosted, work_root), variant))
        self.started: list[LocalServer] = []
        self.stopped_early: list[LocalServer] = []
        self.samplers: dict[str, TreeSampler] = {}
        self.info: dict[str, dict[str, Any]] = {name: setup.describe() for name, setup in self.setups.items()}
        # A variant whose server cannot start or does not apply its settings: its targets are reported with
        # this reason, and the shipped settings are measured all the same.
        self.problems: dict[str, str] = {}
        self._torchserve_headers: dict[str, dict[str, str]] = {}

    def _add(self, setup: Setup) -> None:
        if setup.name in self.setups:
            raise ValueError(f"two servers named {setup.name}")
        self.setups[setup.name] = setup

    @staticmethod
    def _server(runtime: str, name: str, hosted: Mapping[str, BenchModel], work_root: Path) -> LocalServer:
        served = [m.served for m in hosted.values()]
        work_dir = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=work_root))
        if runtime == "torchserve":
            return TorchServeServer(served, work_dir)
        if runtime == "kserve":
            return KServeServer(served, work_dir)
        raise ValueError(f"unknown runtime {runtime!r}")

    def start(self, log: Callable[[str], None]) -> None:
        """Start each server in turn and wait for every model: the ready time is start to all models ready.

        A TorchServe server is ready once every model has as many READY workers as its minWorkers, with
        the batching its config asks for (as its management API describes it).
        """
        for name, setup in self.setups.items():
            try:
                self._start(setup, log)
            except Exception as err:  # a variant's failure must not cost the shipped settings' figures
                if setup.variant is None:
                    raise
                self.problems[name] = f"its server did not start: {type(err).__name__}: {err}"[:2000]
                log(f"{name}: {self.problems[name]}")
                self._stop_early(setup)

    def _stop_early(self, setup: Setup) -> None:
        """Stop a server that will not be measured, so that it costs the others nothing; `stop` checks its ports."""
        if setup.server not in self.started:
            return
        try:
            setup.server.stop()
        except Exception as err:  # left to `stop`, which tries again and reports it
            self.problems[setup.name] += f"; stopping it: {type(err).__name__}: {err}"
            return
        self.started.remove(setup.server)
        self.stopped_early.append(setup.server)

    def _start(self, setup: Setup, log: Callable[[str], None]) -> None:
        threads = {"OMP_NUM_THREADS": str(self.threads), "MKL_NUM_THREADS": str(self.threads)} if self.threads else {}
        info = self.info[setup.name]
        began = time.perf_counter()
        self.started.append(setup.server)  # before start: `stop` must also reach one that fails half-way
        with environ(threads):
            setup.server.start()
        pgid = setup.server.process_group()
        self.samplers[setup.name] = TreeSampler([pgid] if pgid is not None else []).__enter__()
        setup.server.wait_ready(timeout=READY_TIMEOUT_S)
        problems: list[str] = []
        if isinstance(setup.server, TorchServeServer):
            self._torchserve_headers[setup.name] = setup.server.request_headers()
            info["models"], problems = wait_for_workers(setup.server, setup.models, READY_TIMEOUT_S)
        info["ready_s"] = round(time.perf_counter() - began, 2)
        self.samplers[setup.name].sample()
        info["ready_rss_mib"] = self.samplers[setup.name].peak_mib
        log(f"{setup.name}: ready in {info['ready_s']} s, {info['ready_rss_mib']} MiB")
        if problems:
            self.problems[setup.name] = "TorchServe does not apply the set-up: " + "; ".join(problems)
            log(f"{setup.name}: {self.problems[setup.name]}")
            if setup.variant is not None:
                self._stop_early(setup)

    def targets(self) -> tuple[Target, ...]:
        """Every target of the run: TARGETS and each variant's v1-json."""
        return targets_with([(s.name, s.runtime) for s in self.setups.values() if s.variant is not None])

    def batch_sizes(self, model: str) -> dict[str, int]:
        """The batchSize of `model` on each server that is measured."""
        return {name: setup.models[model].server_batch_size for name, setup in self.setups.items()
                if name not in self.problems}

    def workers(self, model: str) -> dict[str, int]:
        """The minWorkers of `model` on each server that is measured: forward passes it runs at once."""
        return {name: setup.models[model].served.folder.config.min_workers for name, setup in self.setups.items()
                if name not in self.problems}

    def pids(self, server: str) -> tuple[int, ...]:
        pgid = self.setups[server].server.process_group()
        return (pgid,) if pgid is not None else ()

    def other_pids(self, server: str) -> tuple[int, ...]:
        return tuple(pid for name in self.setups if name != server for pid in self.pids(name))

    def idle_cores(self, seconds: float) -> dict[str, float]:
        """CPU (cores) each server uses with no request at all: what it costs the other's phases."""
        before = {name: sum(tree_cpu_by_name(self.pids(name)).values()) for name in self.setups}
        time.sleep(seconds)
        idle = {name: round((sum(tree_cpu_by_name(self.pids(name)).values()) - before[name]) / seconds, 3)
                for name in self.setups}
        for name, cores in idle.items():
            self.info[name]["idle_cores"] = cores
        return idle

    def routes(self, model: BenchModel, timeout_s: float = 120.0) -> dict[Target, Route | str]:
        """Every target for `model`: a Route checked with one request, or why the target is not available.

        Raises:
            RuntimeError: A shipped v1 target fails its check (the server is broken, nothing to compare).
        """
        found: dict[Target, Route | str] = {}
        for target in self.targets():
            setup = self.setups[target.server]
            if target.server in self.problems:
                found[target] = self.problems[target.server]
                continue
            try:
                route = self._route(target, setup, setup.models[model.name], timeout_s)
            except Unavailable as err:
                found[target] = str(err)
                continue
            problem = check(route)
            if problem is not None:
                if target.protocol == "v1-json" and target.setup == SHIPPED:
                    raise RuntimeError(f"{target.key} {model.name}: {problem}")
                found[target] = f"the check request failed: {problem}"
            else:
                found[target] = route
        return found

    def _route(self, target: Target, setup: Setup, model: BenchModel, timeout_s: float) -> Route:
        server = setup.server
        logs = tuple(log_files(server))
        pids = self.pids(setup.name)
        if isinstance(server, TorchServeServer) and target.protocol == "v1-json":
            url = server.predictions_url(model.name)
            headers = {**self._torchserve_headers.get(setup.name, {}), "Content-Type": "application/json"}
            return _http_route(target, model, url, headers, pids, logs, verify_v1, timeout_s)
        if not isinstance(server, KServeServer):
            raise ValueError(f"no route to {target.key} on {type(server).__name__}")
        if target.protocol == "v1-json":
            headers = {"Content-Type": "application/json"}
            return _http_route(target, model, server.v1_url(model.name), headers, pids, logs, verify_v1, timeout_s)
        inputs = v2_inputs(server.base_url, model.name)
        try:
            tensors = [v2_tensors([instance], inputs) for instance in model.instances]
        except ValueError as err:
            raise Unavailable(f"the model's instances do not map to its v2 inputs: {err}") from None
        if target.protocol == KSERVE_V2_BINARY.protocol:
            bodies = [v2_binary_body(t) for t in tensors]
            url = urlsplit(server.v2_url(model.name))
            requests = [http_request("POST", url.hostname or LOOPBACK, url.port or 80, url.path, body,
                                     {"Content-Type": "application/octet-stream", BINARY_HEADER: str(length)})
                        for body, length in bodies]
            return Route(target, model.name, pids, logs,
                         open_session=lambda i: HttpSession(url.hostname or LOOPBACK, url.port or 80,
                                                            requests[i % len(requests)], timeout_s),
                         verify=lambda answer: verify_v2_rest(answer, 1))
        if target.protocol == KSERVE_V2_GRPC.protocol:
            grpc_target = getattr(server, "grpc_target", None)
            if not grpc_target:
                raise Unavailable("this KServeServer serves no gRPC (it has no grpc_target)")
            messages = [grpc_request(model.name, t) for t in tensors]
            return Route(target, model.name, pids, logs,
                         open_session=lambda i: GrpcSession(grpc_target, messages[i % len(messages)], timeout_s),
                         verify=lambda answer: verify_grpc(answer, 1))
        raise ValueError(f"unknown target {target}")

    def peak_rss_mib(self) -> dict[str, float]:
        return {name: sampler.peak_mib for name, sampler in self.samplers.items()}

    def stop(self) -> None:
        """Stop everything started, check that no port is left listening, remove the work dirs."""
        problems = []
        for server in reversed(self.started):
            try:
                server.stop()
            except Exception as err:  # stop the others all the same
                problems.append(f"{server.runtime}: {type(err).__name__}: {err}")
        for name, sampler in self.samplers.items():
            sampler.__exit__(None, None, None)
            self.info[name]["peak_rss_mib"] = sampler.peak_mib
        leftover = [port for server in [*self.started, *self.stopped_early] for port in server_ports(server)
                    if listening(port)]
        for setup in self.setups.values():
            shutil.rmtree(setup.server.work_dir, ignore_errors=True)
        if leftover:
            problems.append(f"ports still listening after stop: {leftover}")
        if problems:
            raise RuntimeError("; ".join(problems))


def torchserve_config_problems(described: Sequence[Mapping[str, Any]], config: ModelConfig) -> list[str]:
    """What TorchServe's description of a model (GET /models/<m>) says differently from `config`,
    READY workers included; empty when it serves the model as configured."""
    if not described:
        return ["no version described"]
    version = described[0]
    expected = {"minWorkers": config.min_workers, "maxWorkers": config.max_workers,
                "batchSize": config.batch_size, "maxBatchDelay": config.max_batch_delay}
    problems = [f"{key} {version.get(key)} instead of {value}" for key, value in expected.items()
                if version.get(key) != value]
    ready = sum(1 for worker in version.get("workers", []) if worker.get("status") == "READY")
    if ready != config.min_workers:
        problems.append(f"{ready} READY workers instead of {config.min_workers}")
    return problems


def wait_for_workers(server: TorchServeServer, models: Mapping[str, BenchModel], timeout_s: float
                     ) -> tuple[dict[str, Any], list[str]]:
    """Each model's settings and workers as TorchServe describes them, once they match the models' configs
    (or `timeout_s` has passed), and what still differs."""
    deadline = time.monotonic() + timeout_s
    url, headers = server.listeners.management_url, server.management_headers()
    with http_client() as client:
        while True:
            described: dict[str, Any] = {}
            problems: list[str] = []
            for name, model in models.items():
                answer = client.get(f"{url}/models/{name}", headers=headers)
                versions = answer.json() if answer.status_code == 200 else []
                described[name] = {key: versions[0].get(key) for key in
                                   ("minWorkers", "maxWorkers", "batchSize", "maxBatchDelay")} if versions else {}
                if versions:
                    described[name]["ready_workers"] = sum(1 for w in versions[0].get("workers", [])
                                                           if w.get("status") == "READY")
                problems += [f"{name}: {p}" for p in torchserve_config_problems(versions, model.served.folder.config)]
            if not problems or time.monotonic() >= deadline:
                return described, problems
            time.sleep(0.5)


class Unavailable(Exception):
    """The server does not offer this target for this model; the message says why."""


def _http_route(target: Target, model: BenchModel, url: str, headers: Mapping[str, str], pids: tuple[int, ...],
                logs: tuple[Path, ...], verify: Callable[[Any, int], str | None], timeout_s: float) -> Route:
    parts = urlsplit(url)
    host, port, path = parts.hostname or LOOPBACK, parts.port or 80, parts.path
    bodies = [v1_body([instance]) for instance in model.instances]
    requests = [http_request("POST", host, port, path, body, headers) for body in bodies]
    return Route(
        target, model.name, pids, logs,
        open_session=lambda i: HttpSession(host, port, requests[i % len(requests)], timeout_s),
        verify=lambda answer: verify(answer, 1),
        open_httpx_session=lambda i: HttpxSession(url, bodies[i % len(bodies)], headers, timeout_s),
    )


def v2_inputs(base_url: str, model: str) -> list[dict[str, Any]]:
    """The model's declared v2 inputs (`GET /v2/models/<m>`).

    Raises:
        Unavailable: The metadata cannot be read, or it declares no inputs (the model refuses v2).
    """
    connection = HttpConnection(urlsplit(base_url).hostname or LOOPBACK, urlsplit(base_url).port or 80, 30.0)
    try:
        answer = connection.exchange(http_request("GET", connection.host, connection.port, f"/v2/models/{model}"))
    except OSError as err:
        raise Unavailable(f"GET /v2/models/{model} failed: {err}") from None
    finally:
        connection.close()
    if answer.status != 200:
        raise Unavailable(f"GET /v2/models/{model} answered {answer.status}: {answer.body[:200]!r}")
    inputs = json.loads(answer.body).get("inputs") or []
    if not inputs:
        raise Unavailable(f"the model refuses v2: GET /v2/models/{model} declares no inputs")
    return inputs


def check(route: Route) -> str | None:
    """One request through a fresh session: None when it is answered correctly, else what is wrong."""
    try:
        session = route.open_session(0)
    except Exception as err:  # a gRPC target that cannot even be dialled
        return f"{type(err).__name__}: {err}"
    try:
        status, answer = session.send()
    finally:
        session.close()
    if status != 200:
        return f"status {status}: {getattr(answer, 'body', b'')[:300]!r}"
    return route.verify(answer)


def server_ports(server: LocalServer) -> list[int]:
    if isinstance(server, TorchServeServer):
        lst = server.listeners
        return sorted({lst.inference_port, lst.management_port, lst.metrics_port, lst.grpc_inference_port,
                       lst.grpc_management_port})
    if isinstance(server, KServeServer):
        grpc_target = getattr(server, "grpc_target", None)
        grpc_port = [int(grpc_target.rsplit(":", 1)[1])] if grpc_target else []
        return [server.port, *grpc_port]
    return [urlsplit(server.metrics_url()).port or 0]


def listening(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:`port` (TIME_WAIT sockets do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((LOOPBACK, port)) == 0


def log_files(server: LocalServer) -> list[Path]:
    """Where the handlers' per-request ECS records end up: TorchServe's model_log.log, KServe's stdout."""
    name = "model_log.log" if isinstance(server, TorchServeServer) else "stdout.log"
    return [server.work_dir / "logs" / name]


def log_offsets(paths: Sequence[Path]) -> dict[Path, int]:
    return {path: path.stat().st_size if path.is_file() else 0 for path in paths}


def handler_latencies(offsets: Mapping[Path, int], model: str) -> list[float]:
    """`aip.latency_ms` of the successful requests logged since `offsets`, in log order: time spent in
    the handler (TorchServe: `handle()` for the whole batch, after TorchServe parsed the JSON; KServe:
    `predict()`)."""
    found = []
    for path, offset in offsets.items():
        if not path.is_file():
            continue
        with path.open("rb") as stream:
            stream.seek(offset)
            text = stream.read().decode("utf-8", "replace")
        for line in text.splitlines():
            start = line.find('{"@timestamp"')
            if start < 0 or '"aip"' not in line:
                continue
            try:
                record = json.loads(line[start:])
            except ValueError:
                continue
            aip = record.get("aip", {})
            status = record.get("http", {}).get("response", {}).get("status_code")
            if aip.get("model", {}).get("name") == model and status == 200 and "latency_ms" in aip:
                found.append(float(aip["latency_ms"]))
    return found


def handler_p50(offsets: Mapping[Path, int], model: str, requests: int, wait_s: float = LOG_WAIT_S
                ) -> tuple[float | None, int]:
    """The handlers' p50 over the last `requests` records since `offsets` (a late warm-up record comes
    first and is left out), waiting up to `wait_s` for the server to write them; and the records used."""
    deadline = time.monotonic() + wait_s
    while True:
        found = handler_latencies(offsets, model)
        if len(found) >= requests or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    used = found[-requests:] if requests else []
    return (round(percentile(used, 50), 3) if used else None), len(used)

