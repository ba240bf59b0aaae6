"""TorchServe's `config.properties` for the platform's TorchServe ClusterServingRuntime, as a pure function.

The runtime runs TorchServe itself, without KServe's `torchserve-kfs` wrapper:
`torchserve --start --foreground --model-store=/mnt/models/model-store
--ts-config=/mnt/models/config/config.properties` (`MODEL_STORE`, `CONFIG_PATH`), container port 8080
(`CLUSTER_INFERENCE_PORT`), readiness `GET /ping` on that port. TorchServe's inference listener serves
both `POST /predictions/<m>` and KServe's v1 route `POST /v1/models/<m>:predict` there. The wrapper
(kserve 0.13 inside the image) is not used: it turns every TorchServe 4xx into a 500 and re-encodes
response bodies.
- Inference listens on every interface (the pod network, behind the team namespace's default-deny
  NetworkPolicies); management and gRPC on loopback only; metrics on every interface, port 8082
  (`CLUSTER_METRICS_PORT`), for Prometheus.
- Token authorization is off in the cluster (see `cluster_settings`).

Every key emitted exists in TorchServe 0.12 (`ConfigManager`, or `vmargs` read by the `torchserve`
launcher); `TORCHSERVE_KEYS` lists them and a test keeps the two in step.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from infra.serving.catalog import ModelConfig

# Where the KServe storage initializer puts the storageUri's content in the predictor container, and the
# two paths of it that the runtime's command names (`aip package` writes `<model>/model-store/<model>.mar`
# and `<model>/config/config.properties`, infra.serving.manifest).
STORAGE_MOUNT = "/mnt/models"
MODEL_STORE = f"{STORAGE_MOUNT}/model-store"
CONFIG_PATH = f"{STORAGE_MOUNT}/config/config.properties"

# The ports the runtime spec needs: the container port (inference, KServe's Service targets it, readiness
# `GET /ping`) and Prometheus' scrape port. Management and gRPC stay on loopback and are not container ports.
CLUSTER_INFERENCE_PORT = 8080
CLUSTER_MANAGEMENT_PORT = 8081
CLUSTER_METRICS_PORT = 8082
CLUSTER_GRPC_INFERENCE_PORT = 7070
CLUSTER_GRPC_MANAGEMENT_PORT = 7071

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
    "decode_input_request", "vmargs",
})


@dataclass(frozen=True)
class Listeners:
    """Where TorchServe listens.

    Attributes:
        inference_host: Host of the inference REST listener.
        inference_port: Inference API (`/predictions/<m>`, `/v1/models/<m>:predict`, `/ping`).
        management_host: Host of the management REST listener.
        management_port: Management API; may equal `inference_port` on the same host (one listener
            serves both).
        metrics_host: Host of the Prometheus metrics listener.
        metrics_port: Metrics API (`/metrics`).
        grpc_host: Host of both gRPC listeners (TorchServe 0.12 cannot turn gRPC off).
        grpc_inference_port: gRPC inference API.
        grpc_management_port: gRPC management API.
    """

    inference_host: str
    inference_port: int
    management_host: str
    management_port: int
    metrics_host: str
    metrics_port: int
    grpc_host: str
    grpc_inference_port: int
    grpc_management_port: int

    @property
    def inference_url(self) -> str:
        return f"http://{self.inference_host}:{self.inference_port}"

    @property
    def management_url(self) -> str:
        return f"http://{self.management_host}:{self.management_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self.metrics_host}:{self.metrics_port}"


LOOPBACK = "127.0.0.1"
ALL_INTERFACES = "0.0.0.0"

# In the pod, inference listens on the pod network (the container port KServe's Service targets) and
# metrics too, for Prometheus. Management and gRPC listen on loopback only: nothing outside the container
# needs them (readiness is `GET /ping` on the inference port), and even with enable_model_api=false the
# management API still scales workers and registers workflows. Management has a port of its own, so the
# inference listener serves no management route.
CLUSTER_LISTENERS = Listeners(inference_host=ALL_INTERFACES, inference_port=CLUSTER_INFERENCE_PORT,
                              management_host=LOOPBACK, management_port=CLUSTER_MANAGEMENT_PORT,
                              metrics_host=ALL_INTERFACES, metrics_port=CLUSTER_METRICS_PORT,
                              grpc_host=LOOPBACK, grpc_inference_port=CLUSTER_GRPC_INFERENCE_PORT,
                              grpc_management_port=CLUSTER_GRPC_MANAGEMENT_PORT)


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
    """The settings of the `config.properties` uploaded for the platform's TorchServe runtime.

    Token authorization is off: TorchServe 0.12 generates its keys itself at start (they cannot be
    mounted from a Secret) and expires them after an hour, so no caller could hold a valid one. The
    team namespace's default-deny NetworkPolicies (only the team's pods and the inference gateway reach
    8080, only `monitoring` reaches 8080/8082), loopback-only management and gRPC, and archives loaded
    only from the model store take its place (README, "Serving locally").
    """
    return ServerSettings(listeners=CLUSTER_LISTENERS, model_store=MODEL_STORE, token_auth=False)


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
    listeners = Listeners(inference_host=LOOPBACK, inference_port=inference, management_host=LOOPBACK,
                          management_port=management,
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
    if settings.token_auth and lst.inference_url == lst.management_url:
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
        # TS_* environment variables must not override this file: KServe's upstream runtime sets
        # TS_SERVICE_ENVELOPE from an InferenceService label, and TS_ENABLE_MODEL_API would reopen registration.
        ("enable_envvars_config", "false"),
        # Never pip-install a requirements file shipped inside an archive.
        ("install_py_dep_per_model", "false"),
        # Request bodies reach the handler as raw bytes: the worker would otherwise json.loads every
        # application/json body (and log a traceback for each one that is not JSON) before the handler
        # parses it faster itself (aip_serving.protocol). Only this key works: the frontend builds each
        # worker's environment as its own plus TS_DECODE_INPUT_REQUEST=<this key, default true>
        # (EnvironmentUtils.getEnvString, ConfigManager.getBackendConfiguration), so a
        # TS_DECODE_INPUT_REQUEST in the container's environment is overwritten.
        ("decode_input_request", "false"),
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
        # Java reads backslashes as escapes and naive `key=value` readers (the policy pack,
        # parse_config_properties) do not: keep values free of them.
        if "\\" in value or "\n" in value:
            raise ValueError(f"{key}: value {value!r} may not contain backslashes or newlines")
        lines.append(f"{key}={value}")
    return "\n".join(lines) + "\n"


def parse_config_properties(text: str) -> dict[str, str]:
    """`key=value` lines into a dict, with a naive split as the policy pack reads it (comments skipped)."""
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
