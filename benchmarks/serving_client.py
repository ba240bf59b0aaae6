"""The benchmark's clients: request bodies of each protocol, a lean HTTP/1.1 connection, and load sessions.

On two cores the load generator competes with the server for CPU, so the client does as little as it
can per request: `HttpConnection` sends request bytes encoded once per phase over one keep-alive
socket and reads the status line, the headers and a Content-Length (or chunked) body itself. Answers
are not parsed during a phase; `verify_*` checks a sample of them afterwards (one prediction or output
row per instance).

Bodies:
- v1: `{"instances": [...]}` as compact JSON;
- v2 binary tensor extension: a JSON header
  `{"inputs": [{"name", "shape", "datatype", "parameters": {"binary_data_size": N}}],
  "parameters": {"binary_data_output": true}}` followed by each tensor's little-endian bytes, its length
  in the `Inference-Header-Content-Length` header; `v2_tensors` turns v1 instances into the model's
  declared inputs (`GET /v2/models/<m>`);
- v2 gRPC: a `ModelInferRequest` with the same tensors in `raw_input_contents`.

Sessions (one per load thread, see serving_load.run_phase): `HttpSession` (the lean connection),
`HttpxSession` (an `httpx.Client`, for comparison) and `GrpcSession` (one channel and stub).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

BINARY_HEADER = "Inference-Header-Content-Length"
# Little-endian numpy dtype of each fixed-size v2 datatype (BYTES is not used by these models).
V2_DTYPES: Mapping[str, str] = {
    "BOOL": "|b1", "UINT8": "|u1", "UINT16": "<u2", "UINT32": "<u4", "UINT64": "<u8",
    "INT8": "|i1", "INT16": "<i2", "INT32": "<i4", "INT64": "<i8",
    "FP16": "<f2", "FP32": "<f4", "FP64": "<f8",
}
RECV_BYTES = 65536


class ProtocolError(Exception):
    """The server's answer is not HTTP/1.1 as this client reads it, or the connection closed mid-answer."""


# -- HTTP/1.1 over one socket -------------------------------------------------------------------------


def http_request(method: str, host: str, port: int, path: str, body: bytes = b"",
                 headers: Mapping[str, str] | None = None) -> bytes:
    """A complete HTTP/1.1 request, ready to be sent as many times as needed."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@dataclass(frozen=True)
class HttpResponse:
    """Status, headers (names lower-cased) and body of one answer."""

    status: int
    headers: dict[str, str]
    body: bytes


class HttpConnection:
    """One keep-alive HTTP/1.1 connection to `host`:`port`, opened on first use and again after a close.

    A request on a connection the server closed while idle is sent once more on a fresh one, as long as
    no byte of an answer had arrived.
    """

    def __init__(self, host: str, port: int, timeout_s: float = 120.0) -> None:
        self.host, self.port, self.timeout_s = host, port, timeout_s
        self.sock: socket.socket | None = None
        self.buffer = bytearray()
        self.connects = 0
        self.answer_started = False

    def exchange(self, request: bytes) -> HttpResponse:
        reused = self.sock is not None
        try:
            return self._exchange(request)
        except (OSError, ProtocolError):
            self.close()
            if not reused or self.answer_started:
                raise
        return self._exchange(request)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        self.buffer.clear()

    def _exchange(self, request: bytes) -> HttpResponse:
        self.answer_started = False
        if self.sock is None:
            self.sock = socket.create_connection((self.host, self.port), timeout=self.timeout_s)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.connects += 1
        self.sock.sendall(request)
        response = self._read_response()
        if response.headers.get("connection", "").lower() == "close":
            self.close()
        return response

    def _receive(self) -> None:
        assert self.sock is not None
        chunk = self.sock.recv(RECV_BYTES)
        if not chunk:
            raise ProtocolError("connection closed by the server")
        self.answer_started = True
        self.buffer += chunk

    def _read_response(self) -> HttpResponse:
        buffer = self.buffer
        end = buffer.find(b"\r\n\r\n")
        while end < 0:
            self._receive()
            end = buffer.find(b"\r\n\r\n")
        head = bytes(buffer[:end]).decode("latin-1").split("\r\n")
        del buffer[:end + 4]
        parts = head[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise ProtocolError(f"not an HTTP/1.x status line: {head[0][:80]!r}")
        headers = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = self._read_exactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = self._read_chunked()
        else:
            raise ProtocolError("an answer without Content-Length or chunked encoding")
        return HttpResponse(int(parts[1]), headers, body)

    def _read_exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self._receive()
        body = bytes(self.buffer[:size])
        del self.buffer[:size]
        return body

    def _read_chunked(self) -> bytes:
        body = bytearray()
        while True:
            end = self.buffer.find(b"\r\n")
            while end < 0:
                self._receive()
                end = self.buffer.find(b"\r\n")
            size = int(bytes(self.buffer[:end]).split(b";")[0], 16)
            del self.buffer[:end + 2]
            body += self._read_exactly(size + 2)[:size]
            if size == 0:
                return bytes(body)


# -- bodies -------------------------------------------------------------------------------------------


def v1_body(instances: Sequence[Any]) -> bytes:
    return json.dumps({"instances": list(instances)}, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Tensor:
    name: str
    datatype: str
    array: np.ndarray

    @property
    def shape(self) -> list[int]:
        return list(self.array.shape)


def v2_tensors(instances: Sequence[Any], inputs: Sequence[Mapping[str, Any]]) -> list[Tensor]:
    """The v2 input tensors standing for v1 `instances`, given the model's declared `inputs` (name,
    datatype, shape as `GET /v2/models/<m>` lists them).

    Object instances fill the inputs named by their keys (an input no instance names is left out: it is
    optional, as the ranker's `exclude_seen`); any other instance is one row of the single input.

    Raises:
        ValueError: The model declares no inputs, or the instances do not fit them.
    """
    if not inputs:
        raise ValueError("the model declares no v2 inputs")
    if all(isinstance(instance, Mapping) for instance in instances):
        tensors = []
        for spec in inputs:
            name = spec["name"]
            present = [name in instance for instance in instances]
            if not any(present):
                continue
            if not all(present):
                raise ValueError(f"input {name!r} is in some instances only")
            tensors.append(_tensor(spec, [instance[name] for instance in instances]))
        unknown = sorted({key for instance in instances for key in instance} - {spec["name"] for spec in inputs})
        if unknown:
            raise ValueError(f"instance fields {unknown} are not declared v2 inputs")
        return tensors
    if len(inputs) != 1:
        raise ValueError(f"{len(inputs)} declared inputs, but the instances are not objects naming them")
    return [_tensor(inputs[0], list(instances))]


def _tensor(spec: Mapping[str, Any], rows: list[Any]) -> Tensor:
    datatype = spec["datatype"]
    if datatype not in V2_DTYPES:
        raise ValueError(f"input {spec['name']!r}: datatype {datatype} is not supported here")
    array = np.asarray(rows, dtype=np.dtype(V2_DTYPES[datatype]))
    declared = [int(d) for d in spec.get("shape", [])]
    if len(declared) != array.ndim and all(d > 0 for d in declared[1:]):
        array = array.reshape(len(rows), *declared[1:])
    if len(declared) == array.ndim and any(d not in (-1, n) for d, n in zip(declared, array.shape, strict=True)):
        raise ValueError(f"input {spec['name']!r}: shape {list(array.shape)} does not fit {declared}")
    return Tensor(spec["name"], datatype, array)


def v2_binary_body(tensors: Sequence[Tensor], binary_output: bool = True) -> tuple[bytes, int]:
    """A v2 binary-extension request body and the length of its JSON header."""
    raw = [np.ascontiguousarray(t.array).tobytes() for t in tensors]
    header: dict[str, Any] = {"inputs": [
        {"name": t.name, "shape": t.shape, "datatype": t.datatype, "parameters": {"binary_data_size": len(data)}}
        for t, data in zip(tensors, raw, strict=True)
    ]}
    if binary_output:
        header["parameters"] = {"binary_data_output": True}
    head = json.dumps(header, separators=(",", ":")).encode()
    return head + b"".join(raw), len(head)


def parse_v2_body(body: bytes, json_length: int | None, key: str = "outputs") -> dict[str, np.ndarray]:
    """The tensors (`inputs` or `outputs`) of a v2 body, with the binary extension or plain JSON `data`.

    Raises:
        ValueError: The body does not hold what its header says.
    """
    length = len(body) if json_length is None else json_length
    header = json.loads(body[:length])
    found, offset = {}, length
    for entry in header.get(key, []):
        datatype, shape = entry["datatype"], [int(d) for d in entry["shape"]]
        size = (entry.get("parameters") or {}).get("binary_data_size")
        if size is not None:
            if datatype not in V2_DTYPES:
                raise ValueError(f"{entry['name']}: datatype {datatype} is not supported here")
            chunk = body[offset:offset + int(size)]
            if len(chunk) != int(size):
                raise ValueError(f"{entry['name']}: {len(chunk)} bytes left, binary_data_size says {size}")
            array = np.frombuffer(chunk, dtype=np.dtype(V2_DTYPES[datatype])).reshape(shape)
            offset += int(size)
        else:
            array = np.asarray(entry["data"]).reshape(shape)
        found[entry["name"]] = array
    if offset != len(body) and json_length is not None:
        raise ValueError(f"{len(body) - offset} bytes after the last tensor")
    return found


# -- checking a sample of answers ---------------------------------------------------------------------


def verify_v1(response: HttpResponse, instances: int) -> str | None:
    """None when the answer is 200 with one prediction per instance, else what is wrong."""
    if response.status != 200:
        return f"status {response.status}: {response.body[:200]!r}"
    try:
        predictions = json.loads(response.body).get("predictions")
    except (ValueError, AttributeError):
        return f"not a JSON object: {response.body[:200]!r}"
    if not isinstance(predictions, list) or len(predictions) != instances:
        return f"{len(predictions) if isinstance(predictions, list) else 'no'} predictions for {instances} instances"
    return None


def verify_v2_rest(response: HttpResponse, instances: int) -> str | None:
    """None when the answer is 200 and every output tensor has one row per instance."""
    if response.status != 200:
        return f"status {response.status}: {response.body[:200]!r}"
    length = response.headers.get(BINARY_HEADER.lower())
    try:
        outputs = parse_v2_body(response.body, int(length) if length is not None else None)
    except (ValueError, KeyError, TypeError) as err:
        return f"unreadable v2 answer ({err}): {response.body[:200]!r}"
    return _rows_problem({name: list(array.shape) for name, array in outputs.items()}, instances)


def verify_grpc(response: Any, instances: int) -> str | None:
    return _rows_problem({output.name: list(output.shape) for output in response.outputs}, instances)


def _rows_problem(shapes: Mapping[str, list[int]], instances: int) -> str | None:
    if not shapes:
        return "no output tensors"
    wrong = {name: shape for name, shape in shapes.items() if not shape or shape[0] != instances}
    return f"output shapes {wrong} for {instances} instances" if wrong else None


# -- load sessions --------------------------------------------------------------------------------------


class HttpSession:
    """One load thread's keep-alive connection sending the same request bytes."""

    def __init__(self, host: str, port: int, request: bytes, timeout_s: float = 120.0) -> None:
        self.connection = HttpConnection(host, port, timeout_s)
        self.request = request

    def send(self) -> tuple[int, HttpResponse | None]:
        try:
            response = self.connection.exchange(self.request)
        except (OSError, ProtocolError, ValueError):
            self.connection.close()
            return 0, None
        return response.status, response

    def close(self) -> None:
        self.connection.close()


class HttpxSession:
    """The same with an `httpx.Client`: the generator this benchmark used before, kept for comparison."""

    def __init__(self, url: str, body: bytes, headers: Mapping[str, str], timeout_s: float = 120.0) -> None:
        import httpx

        # trust_env=False: no proxy from the environment ever sees loopback traffic.
        self.client = httpx.Client(timeout=timeout_s, trust_env=False)
        self.url, self.body, self.headers = url, body, dict(headers)
        self.errors = (httpx.HTTPError,)

    def send(self) -> tuple[int, HttpResponse | None]:
        try:
            response = self.client.post(self.url, content=self.body, headers=self.headers)
        except self.errors:
            return 0, None
        return response.status_code, HttpResponse(response.status_code,
                                                   {k.lower(): v for k, v in response.headers.items()},
                                                   response.content)

    def close(self) -> None:
        self.client.close()


def grpc_request(model: str, tensors: Sequence[Tensor]) -> Any:
    """A v2 `ModelInferRequest` carrying `tensors` in `raw_input_contents`."""
    from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb

    request = pb.ModelInferRequest(model_name=model)
    for tensor in tensors:
        request.inputs.add(name=tensor.name, datatype=tensor.datatype, shape=tensor.shape)
        request.raw_input_contents.append(np.ascontiguousarray(tensor.array).tobytes())
    return request


class GrpcSession:
    """One load thread's gRPC channel (a connection of its own) and stub, sending the same request."""

    def __init__(self, target: str, request: Any, timeout_s: float = 120.0) -> None:
        import grpc
        from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as pb_grpc

        # A local subchannel pool: channels to the same target would otherwise share one connection.
        # No proxy from the environment may see loopback traffic (grpc honours http_proxy).
        self.channel = grpc.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1),
                                                              ("grpc.enable_http_proxy", 0)])
        self.infer = pb_grpc.GRPCInferenceServiceStub(self.channel).ModelInfer
        self.request, self.timeout_s = request, timeout_s
        self.rpc_error = grpc.RpcError

    def send(self) -> tuple[int | str, Any]:
        try:
            return 200, self.infer(self.request, timeout=self.timeout_s)
        except self.rpc_error as err:
            code = err.code() if hasattr(err, "code") else None
            return f"grpc {code.name if code is not None else 'error'}", None

    def close(self) -> None:
        self.channel.close()
