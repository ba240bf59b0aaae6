"""TorchServe's `config.properties` for KServe's `kserve-torchserve` runtime, as a pure function.

The runtime starts `torchserve --start --model-store=/mnt/models/model-store
--ts-config=/mnt/models/config/config.properties` in the `pytorch/torchserve-kfs` image, whose entry
point then runs the KServe wrapper (`kubernetes/kserve/kserve_wrapper` in pytorch/serve) in the same
container. The wrapper:
- serves KServe's REST API on :8080 and gRPC on :8081, so TorchServe must use neither port;
- reads `inference_address`, `management_address`, `grpc_inference_port`, `model_store` and the
  model names of `model_snapshot` from this file with a naive `key=value` split (no escapes);
- forwards `/v1/models/<m>:predict` and `/v2/models/<m>/infer` bodies unchanged to TorchServe's
  KServe-compatible routes on `inference_address`, and decides readiness with
  `GET <management_address>/models/<m>` (workers READY). It sends no Authorization header.
Prometheus scrapes TorchServe's metrics listener (:8082, the runtime's `prometheus.kserve.io/port`).

Every key emitted exists in TorchServe 0.12 (`ConfigManager`, or `vmargs` read by the `torchserve`
launcher); `TORCHSERVE_KEYS` lists them and a test keeps the two in step.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from infra.serving.catalog import ModelConfig

# Where the KServe storage initializer puts the storageUri's content in the predictor container.
CLUSTER_MODEL_STORE = "/mnt/models/model-store"

# KServe protocols an InferenceService on this runtime can speak. No `service_envelope` is set, so
# TorchServe hands request bodies to our handlers unchanged, and they decode the v1 body themselves (this
# also keeps TorchServe's dynamic batching, which the `kserve` envelope breaks by reading only the first
# request of a batch). v2 would need the `kservev2` envelope, which hands the handler decoded tensors it
# does not accept: models that must speak v2 use the `kserve` runtime (their predictor image).
TORCHSERVE_PROTOCOLS = ("v1",)

# Keys of TorchServe 0.12's ConfigManager (javap on ts/frontend/model-server.jar) that this module may
# emit, plus `vmargs`, which the Python launcher (ts/model_server.py) reads. `metrics_format` is not one:
# TorchServe ignores it (upstream KServe samples still use it).
TORCHSERVE_KEYS = frozenset({
    "inference_address", "management_address", "metrics_address",
    "grpc_inference_address", "grpc_inference_port", "grpc_management_address", "grpc_management_port",
    "enable_metrics_api", "metrics_mode", "disable_token_authorization", "enable_model_api",
    "enable_envvars_config", "install_py_dep_per_model", "allowed_urls", "model_store", "model_snapshot",
    "vmargs",
})


@dataclass(frozen=True)
class Listeners:
    """Where TorchServe listens.

    Attributes:
        host: Host of the inference and management REST listeners.
        inference_port: Inference API (`/predictions/<m>`, `/v1/models/<m>:predict`, `/ping`).
        management_port: Management API; may equal `inference_port` (one listener serves both).
        metrics_host: Host of the Prometheus metrics listener.
        metrics_port: Metrics API (`/metrics`).
        grpc_host: Host of both gRPC listeners (TorchServe 0.12 cannot turn gRPC off).
        grpc_inference_port: gRPC inference API.
        grpc_management_port: gRPC management API.
    """

    host: str
    inference_port: int
    management_port: int
    metrics_host: str
    metrics_port: int
    grpc_host: str
    grpc_inference_port: int
    grpc_management_port: int

    @property
    def inference_url(self) -> str:
        return f"http://{self.host}:{self.inference_port}"

    @property
    def management_url(self) -> str:
        return f"http://{self.host}:{self.management_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self.metrics_host}:{self.metrics_port}"


LOOPBACK = "127.0.0.1"

# In the pod, inference, management and gRPC listen on loopback only: the KServe wrapper in the same
# container is their only client, so nothing else can reach the management API (which, even with
# enable_model_api=false, still scales workers and registers workflows). Only metrics listen on every
# interface, for Prometheus. Inference and management share 8085 as in the upstream samples (8080 and
# 8081 belong to the wrapper).
CLUSTER_LISTENERS = Listeners(host=LOOPBACK, inference_port=8085, management_port=8085,
                              metrics_host="0.0.0.0", metrics_port=8082,
                              grpc_host=LOOPBACK, grpc_inference_port=7070, grpc_management_port=7071)


@dataclass(frozen=True)
class ServerSettings:
    """Everything in `config.properties` that is not a model.

    Attributes:
        listeners: Addresses and ports.
        model_store: Folder with the `.mar` files.
        token_auth: TorchServe's token authorization (`key_file.json` in the working directory).
        java_tmp_dir: `-Djava.io.tmpdir` for the frontend (local runs keep every file in a work dir).
    """

    listeners: Listeners
    model_store: str
    token_auth: bool
    java_tmp_dir: str | None = None


@dataclass(frozen=True)
class SnapshotModel:
    """One model TorchServe loads at start (an entry of `model_snapshot`)."""

    name: str
    version: str
    config: ModelConfig

    @property
    def mar_name(self) -> str:
        return f"{self.name}.mar"


def cluster_settings() -> ServerSettings:
    """The settings of the archive uploaded for KServe's `kserve-torchserve` runtime.

    Token authorization is off: the KServe wrapper sends no token, and TorchServe 0.12 generates its
    keys itself at start (they cannot be mounted) and expires them after an hour. Loopback listeners
    and the team namespace's default-deny NetworkPolicy take its place (README, "Serving locally").
    """
    return ServerSettings(listeners=CLUSTER_LISTENERS, model_store=CLUSTER_MODEL_STORE, token_auth=False)


def local_settings(*, ports: Sequence[int], model_store: str, tmp_dir: str, token_auth: bool) -> ServerSettings:
    """The cluster's settings for a workstation: every listener on loopback, on the given free ports.

    Args:
        ports: Five distinct ports: inference, management, metrics, gRPC inference, gRPC management.
            Inference and management are separate here so that token authorization can be on.
        model_store: Local model store.
        tmp_dir: Private temporary folder for the Java frontend (`vmargs=-Djava.io.tmpdir=...`).
        token_auth: TorchServe's token authorization.
    """
    if len(ports) != 5 or len(set(ports)) != 5:
        raise ValueError(f"expected five distinct ports, got {list(ports)}")
    inference, management, metrics, grpc_inference, grpc_management = ports
    listeners = Listeners(host=LOOPBACK, inference_port=inference, management_port=management,
                          metrics_host=LOOPBACK, metrics_port=metrics, grpc_host=LOOPBACK,
                          grpc_inference_port=grpc_inference, grpc_management_port=grpc_management)
    return ServerSettings(listeners=listeners, model_store=model_store, token_auth=token_auth, java_tmp_dir=tmp_dir)


def render_config_properties(models: Sequence[SnapshotModel], settings: ServerSettings) -> str:
    """The `config.properties` text for these models; same input, same bytes."""
    if not models:
        raise ValueError("config.properties needs at least one model")
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate model names: {names}")
    lst = settings.listeners
    if settings.token_auth and lst.inference_port == lst.management_port:
        # On a shared listener TorchServe checks the inference token and then the management token,
        # so with token authorization on, no management request could ever pass.
        raise ValueError("token authorization needs separate inference and management ports")
    properties: list[tuple[str, str]] = [
        ("inference_address", lst.inference_url),
        ("management_address", lst.management_url),
        ("metrics_address", lst.metrics_url),
        ("grpc_inference_address", lst.grpc_host),
        ("grpc_inference_port", str(lst.grpc_inference_port)),
        ("grpc_management_address", lst.grpc_host),
        ("grpc_management_port", str(lst.grpc_management_port)),
        ("enable_metrics_api", "true"),
        # The default, `log`, leaves /metrics empty.
        ("metrics_mode", "prometheus"),
        ("disable_token_authorization", _bool(not settings.token_auth)),
        # No model registration or deletion through the management API: only the snapshot's models load.
        ("enable_model_api", "false"),
        # TS_* environment variables must not override this file: the runtime sets TS_SERVICE_ENVELOPE
        # from an InferenceService label, and TS_ENABLE_MODEL_API would reopen registration.
        ("enable_envvars_config", "false"),
        # Never pip-install a requirements file shipped inside an archive.
        ("install_py_dep_per_model", "false"),
        # Archives may only come from the model store itself: no http(s), s3 or other file URLs.
        ("allowed_urls", f"file://{_regex_literal(settings.model_store)}/[^/]+[.]mar"),
        ("model_store", settings.model_store),
    ]
    if settings.java_tmp_dir is not None:
        # HotSpot writes its perf data to /tmp/hsperfdata_<user> whatever java.io.tmpdir says: turn it off.
        properties.append(("vmargs", f"-Djava.io.tmpdir={settings.java_tmp_dir} -XX:-UsePerfData"))
    properties.append(("model_snapshot", _snapshot(models)))
    lines = ["# Generated by `aip package` (infra/serving/config_properties.py). Do not edit."]
    for key, value in properties:
        if key not in TORCHSERVE_KEYS:
            raise AssertionError(f"{key} is not a TorchServe 0.12 setting")
        # Java reads backslashes as escapes and the KServe wrapper does not: keep values free of them.
        if "\\" in value or "\n" in value:
            raise ValueError(f"{key}: value {value!r} may not contain backslashes or newlines")
        lines.append(f"{key}={value}")
    return "\n".join(lines) + "\n"


def parse_config_properties(text: str) -> dict[str, str]:
    """`key=value` lines into a dict, the way the KServe wrapper reads the file (comments skipped)."""
    result = {}
    for line in text.splitlines():
        if line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        result[key.strip()] = value.strip()
    return result


def _snapshot(models: Sequence[SnapshotModel]) -> str:
    """TorchServe's startup snapshot: the models, versions and worker settings it loads at start."""
    entries = {}
    for model in sorted(models, key=lambda m: m.name):
        c = model.config
        entries[model.name] = {model.version: {
            "defaultVersion": True,
            "marName": model.mar_name,
            "minWorkers": c.min_workers,
            "maxWorkers": c.max_workers,
            "batchSize": c.batch_size,
            "maxBatchDelay": c.max_batch_delay,
            "responseTimeout": c.response_timeout,
        }}
    return json.dumps({"name": "startup.cfg", "modelCount": len(entries), "models": entries},
                      separators=(",", ":"))


def _regex_literal(path: str) -> str:
    """A path as a Java regex that matches only itself, without backslashes (see above)."""
    out = []
    for char in path:
        if char.isalnum() or char in "/_-":
            out.append(char)
        elif char in "[]\\^":
            raise ValueError(f"model store path {path!r} contains {char!r}, which allowed_urls cannot quote")
        else:
            out.append(f"[{char}]")
    return "".join(out)


def _bool(value: bool) -> str:
    return "true" if value else "false"
