"""KServe adapter: a ``kserve.Model`` that feeds a :class:`~aip_serving.core.ModelCore`, and ``serve()``.

A model folder's ``predictor.py`` subclasses :class:`KServeModel`, names its core, and calls
:func:`serve` under ``if __name__ == "__main__":``.

What KServe 0.16 hands to ``predict`` (its ``DataPlane.decode``, checked on a real server): on
``/v1/models/<m>:predict`` a ``dict`` when KServe JSON-decoded the body (sent as JSON, without a content
type, or as ``application/octet-stream``; KServe itself answers 400 when that fails), the raw ``bytes``
for a ``text/*`` body; on ``/v2/models/<m>/infer`` an ``InferRequest``. An ``InvalidInput`` raised here
becomes HTTP 400 ``{"error": message}``; anything else becomes 500.

Every inference request is also counted by status in ``aip_inference_requests_total`` on KServe's
``/metrics`` (:mod:`aip_serving.metrics`), installed when ``ModelServer.start`` starts the model. At the
same moment :mod:`aip_serving.guard` goes in front of KServe's app: the model repository API
(``/v2/repository/...``: load, unload) and every ``/v2/models/<m>/versions/<v>/...`` route answer 404,
``GET /v2`` stops advertising the repository extension, and a malformed v2 binary-tensor request to a
hosted model gets 400 with what is wrong instead of a 500 from KServe's decoding. gRPC v2 (a
``ModelInfer`` reaches ``predict`` as an ``InferRequest`` too) gets the same rules and the same counter
from :mod:`aip_serving.grpc_guard`, installed at that moment as well.
``GET /v2/models/<m>`` lists the core's declared input and output tensors.

Requests share forward passes (:class:`~aip_serving.batching.GreedyBatcher`): ``predict`` is a coroutine
that validates its request on the event loop, then waits for the next forward pass, which the model's
worker thread runs over every request queued at that moment, up to ``batchSize`` of ``model-config.yaml``.
Alone, a request goes straight to the model; nothing waits for a batch to fill.

v2 binary tensors stay bytes until the model reads them (:func:`keep_binary_inputs_raw`, installed with
the guard), the model checks them as whole arrays (:meth:`~aip_serving.core.ModelCore.decode_tensors`),
and outputs go back as raw bytes when the request asks (``parameters.binary_data_output``, or
``parameters.binary_data`` of an entry in ``outputs``).
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import kserve
import numpy as np
import orjson
import torch
from kserve.errors import InvalidInput, ServerNotReady
from kserve.protocol.infer_type import InferInput, InferOutput, InferRequest, InferResponse, RequestedOutput
from kserve.utils.numpy_codec import from_np_dtype

from aip_serving.batching import GreedyBatcher, Overloaded
from aip_serving.checks import json_type, quoted_key
from aip_serving.core import ModelCore, Prediction
from aip_serving.errors import InputError
from aip_serving.grpc_guard import install_grpc_guard
from aip_serving.guard import guard_requests
from aip_serving.logs import RequestRecord, configure_request_logger, log_request
from aip_serving.metrics import count_requests
from aip_serving.model_config import MODEL_CONFIG_FILE, max_batch_instances, read_model_config, torch_threads
from aip_serving.model_config import batch_size as configured_batch_size
from aip_serving.model_config import workers as configured_workers
from aip_serving.protocol import v1_response
from aip_serving.threads import apply_torch_threads as set_process_threads

RUNTIME = "kserve"
DEFAULT_MODEL_DIR = "/mnt/models"  # where KServe's storage initializer puts a storageUri
DEFAULT_HTTP_PORT = 8080
# KServe's per-request latency line repeats what the request record (aip_serving.logs) already says
# (request id, latency) and cost about a tenth of the event loop's time with small requests.
SERVER_OPTIONS: Mapping[str, Any] = {"enable_latency_logging": False}
DEFAULT_GRPC_PORT = 8081  # KServe's; 0 turns gRPC off


def default_device() -> torch.device:
    """The first GPU when the pod has one, else the CPU."""
    return torch.device("cuda:0") if torch.cuda.is_available() else torch.device("cpu")


class KServeModel(kserve.Model):
    """Template KServe model speaking v1 (``{"instances": [...]}``) and v2 (``InferRequest``).

    Args:
        name: Name served on the routes (``/v1/models/<name>:predict``).
        model_dir: Directory holding the trained weights.
        device: Where to run; the first GPU if any, else the CPU.
        max_batch_instances: Limit on instances per request; the core's default when None.
        version: Version reported in v2 answers and logs; the core's when None.
        batch_size: The most requests one forward pass serves; when None, ``batchSize`` of the
            ``model-config.yaml`` next to the subclass's module (its model folder), else 1. One forward
            pass holds at most ``batch_size`` x ``max_batch_instances`` instances.
        workers: Forward passes run at the same time, each in its own thread; when None, ``minWorkers``
            of the same ``model-config.yaml`` (TorchServe's worker count), else 1.

    Attributes:
        core_class: The model's :class:`~aip_serving.core.ModelCore` subclass; set by each model.
        model_folder: Folder of the module defining the subclass (a model folder's ``predictor.py``).
        core: The loaded core, after :meth:`load`.
        batcher: Runs the forward passes, after :meth:`load`.
    """

    core_class: ClassVar[type[ModelCore[Any]]]
    model_folder: ClassVar[Path | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Noted now, while the module runs: hosts and tests may drop it from sys.modules afterwards.
        module_file = getattr(sys.modules.get(cls.__module__), "__file__", None)
        cls.model_folder = Path(module_file).resolve().parent if module_file else None

    def __init__(
        self,
        name: str,
        model_dir: str | Path,
        *,
        device: torch.device | str | None = None,
        max_batch_instances: int | None = None,
        version: str | None = None,
        batch_size: int | None = None,
        workers: int | None = None,
    ) -> None:
        super().__init__(name)
        self.model_dir = Path(model_dir)
        self.device = torch.device(device) if device is not None else default_device()
        self.max_batch_instances = max_batch_instances
        self.version = version or self.core_class.version
        config = folder_config(type(self)) if batch_size is None or workers is None else {}
        self.batch_size = batch_size if batch_size is not None else configured_batch_size(config)
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {self.batch_size}")
        self.workers = workers if workers is not None else configured_workers(config)
        if self.workers < 1:
            raise ValueError(f"workers must be positive, got {self.workers}")
        self.core: ModelCore[Any] | None = None
        self.batcher: GreedyBatcher[Any, Prediction] | None = None
        self.request_logger = None
        self.ready = False

    def load(self) -> bool:
        """Load the weights (``weights_only=True``); the server reports ready only afterwards."""
        self.core = self.core_class.load(
            self.model_dir, device=self.device, max_batch_instances=self.max_batch_instances
        )
        self.batcher = GreedyBatcher(self.core.predict_decoded, max_requests=self.batch_size,
                                     workers=self.workers, thread_name=f"{self.name}-forward")
        self.request_logger = configure_request_logger()
        self.ready = True
        return self.ready

    def start(self) -> None:
        """Guard KServe's app and count this model's requests by HTTP status on its ``/metrics``.

        ``ModelServer.start`` calls this for every model before its REST server starts, in both ways
        a predictor runs (:func:`serve` and a host serving several models), and before the app is
        built, which is when middleware must be added. The guard goes in first, so the counter, added
        after it and so outside it, counts the guard's 400s too. It is also before the gRPC server is
        built: :func:`~aip_serving.grpc_guard.install_grpc_guard` makes it the guarded, counted one.

        Raises:
            RuntimeError: The guard cannot be installed (the app already serves): serving without it
                would expose the repository API.
        """
        super().start()
        app = kserve.model_server.app
        if not guard_requests(app, self.name):
            raise RuntimeError("KServe's app is already serving: the request guard cannot be installed")
        count_requests(app, self.name)
        keep_binary_inputs_raw()
        install_grpc_guard()

    def get_input_types(self) -> list[dict[str, Any]]:
        """The v2 metadata's ``inputs`` (``GET /v2/models/<m>``): the core's declared input tensors."""
        return self.core_class.v2_metadata()[0]

    def get_output_types(self) -> list[dict[str, Any]]:
        """The v2 metadata's ``outputs``: the core's declared output tensors."""
        return self.core_class.v2_metadata()[1]

    async def predict(
        self,
        payload: Mapping[str, Any] | bytes | InferRequest,
        headers: Mapping[str, str] | None = None,
    ) -> dict[str, list[Any]] | InferResponse:
        """Validate the request on its own, predict it in the next forward pass, answer in its protocol.

        Reading and validating run here, on the event loop, so a bad request is refused alone and costs
        no forward pass. The forward pass runs in the model's worker thread, shared with the requests
        queued beside this one (:class:`~aip_serving.batching.GreedyBatcher`); if it fails, the requests
        of that pass get a 500 and the next pass runs as usual.

        Raises:
            InvalidInput: The request is malformed (HTTP 400, with the message naming what is wrong).
            ServerNotReady: Too many requests already wait for a forward pass (HTTP 503).
        """
        started = time.perf_counter()
        request_id = (headers or {}).get("x-request-id") or str(uuid.uuid4())
        instances = 0
        try:
            core, batcher = self._core(), self._batcher()
            if isinstance(payload, InferRequest):
                outputs = requested_outputs(payload, core.v2_outputs)
                decoded = core.decode_tensors(tensors_of(payload))
                instances = len(decoded)
                response: dict[str, list[Any]] | InferResponse = self._v2_response(
                    payload, await batcher.submit(decoded), request_id, outputs
                )
            else:
                rows = core.read_request(payload)
                instances = len(rows)
                response = v1_response(await batcher.submit(core.decode_instances(rows)))
        except InputError as err:
            self._log(request_id, err.http_status, started, instances, type(err).__name__)
            raise InvalidInput(err.message) from err
        except Overloaded as err:
            # KServe answers ServerNotReady with 503: the client (or the Service) retries elsewhere.
            self._log(request_id, 503, started, instances, type(err).__name__)
            raise ServerNotReady(f"model {self.name} is overloaded: {err}") from err
        except Exception as err:
            self._log(request_id, 500, started, instances, type(err).__name__)
            raise
        self._log(request_id, 200, started, instances, None)
        return response

    def _v2_response(
        self, request: InferRequest, predictions: Sequence[Prediction], request_id: str, binary: Mapping[str, bool]
    ) -> InferResponse:
        tensors = self._core().tensors_from_predictions(predictions)
        outputs = []
        for name, raw in binary.items():
            array = tensors[name]
            output = InferOutput(name=name, shape=list(array.shape), datatype=from_np_dtype(array.dtype))
            output.set_data_from_numpy(array, binary_data=raw)
            outputs.append(output)
        # KServe's REST encoding takes each output's format from the requested outputs when there are
        # any, else applies one flag to all: passing both keeps what requested_outputs() decided.
        requested = [RequestedOutput(name, {"binary_data": raw}) for name, raw in binary.items()]
        return InferResponse(
            response_id=request.id or request_id,
            model_name=self.name,
            model_version=self.version,
            infer_outputs=outputs,
            use_binary_outputs=request.use_binary_outputs,
            requested_outputs=requested if request.request_outputs else None,
        )

    def _core(self) -> ModelCore[Any]:
        if self.core is None:
            raise RuntimeError("predict() called before load()")
        return self.core

    def _batcher(self) -> GreedyBatcher[Any, Prediction]:
        if self.batcher is None:
            raise RuntimeError("predict() called before load()")
        return self.batcher

    def _log(self, request_id: str, status: int, started: float, instances: int, error_type: str | None) -> None:
        if self.request_logger is None:
            return
        log_request(
            self.request_logger,
            RequestRecord(
                request_id=request_id,
                model_name=self.name,
                model_version=self.version,
                runtime=RUNTIME,
                status=status,
                latency_ms=(time.perf_counter() - started) * 1000,
                instances=instances,
                error_type=error_type,
            ),
        )


def tensors_of(request: InferRequest) -> dict[str, np.ndarray]:
    """A v2 request's inputs as numpy arrays by name.

    Raises:
        InputError: Two inputs share a name, or an input's data does not fit its shape or datatype
            (including an integer out of range for ``INT64``, which numpy reports as ``OverflowError``).
    """
    tensors: dict[str, np.ndarray] = {}
    for infer_input in request.inputs:
        if infer_input.name in tensors:
            raise InputError(f'input "{infer_input.name}" appears more than once')
        try:
            tensors[infer_input.name] = infer_input.as_numpy()
        except (ValueError, TypeError, OverflowError, InvalidInput) as err:
            raise InputError(
                f'input "{infer_input.name}": data does not fit shape {list(infer_input.shape)} '
                f"and datatype {infer_input.datatype} ({err})"
            ) from None
    return tensors


def requested_outputs(request: InferRequest, outputs: Mapping[str, Any]) -> dict[str, bool]:
    """The output tensors to answer, in order, each with whether it travels as raw bytes.

    The v2 binary tensor extension over REST: ``parameters.binary_data_output: true`` asks for every
    output as raw bytes after the JSON; an entry of the request's ``outputs`` names an output to answer
    and may choose for it with ``parameters.binary_data``. Without ``outputs`` every output is answered.
    Over gRPC, KServe answers raw outputs when the inputs came raw.

    Args:
        request: The v2 request.
        outputs: Names of the model's output tensors, in their declared order.

    Raises:
        InputError: An output the model does not have is requested, or a flag is not true or false.
    """
    default = request.use_binary_outputs
    if not isinstance(default, bool):
        raise InputError(f"parameters.binary_data_output must be true or false, got {json_type(default)}")
    if not request.request_outputs:
        return dict.fromkeys(outputs, default)
    chosen: dict[str, bool] = {}
    for requested in request.request_outputs:
        if requested.name not in outputs:
            raise InputError(f"unknown output {quoted_key(requested.name)} requested (outputs: {', '.join(outputs)})")
        binary = requested.binary_data
        if binary is None or request.from_grpc:
            # gRPC answers raw contents for all outputs or for none: the flag is a REST notion.
            binary = default
        elif not isinstance(binary, bool):
            raise InputError(f'output "{requested.name}": parameters.binary_data must be true or false, '
                             f"got {json_type(binary)}")
        chosen[requested.name] = binary
    return chosen


def folder_config(model_cls: type[KServeModel]) -> dict[str, Any]:
    """The ``model-config.yaml`` in ``model_cls.model_folder`` (empty when there is none).

    That folder holds the model's ``predictor.py``, in the repository and in the image alike.
    """
    if model_cls.model_folder is None:
        return {}
    return read_model_config(model_cls.model_folder / MODEL_CONFIG_FILE)


def keep_binary_inputs_raw() -> None:
    """Make KServe keep each v2 binary input as the bytes that came, for the model to read as an array.

    KServe 0.16's ``InferRequest.from_bytes`` reads every binary input into numpy, then stores it as a
    Python list of Python numbers (``set_data_from_numpy(..., binary_data=False)``), which
    ``InferInput.as_numpy`` later turns back into an array: about 50 ms per 3x224x224 FP32 image here,
    where keeping the bytes makes ``as_numpy`` a view over them (``np.frombuffer``). The replacement
    below is KServe's own, less that conversion; gRPC requests already keep raw inputs as bytes.

    Process-wide and idempotent: every model served by this interpreter gets it. The request guard
    (:func:`~aip_serving.guard.check_binary_request`) has checked each body's layout before this runs.
    """
    InferRequest.from_bytes = classmethod(_infer_request_keeping_raw_inputs)  # type: ignore[method-assign]


def _infer_request_keeping_raw_inputs(
    cls: type[InferRequest], req_bytes: bytes, json_length: int, model_name: str
) -> InferRequest:
    """``InferRequest.from_bytes`` of KServe 0.16 without the conversion of binary inputs to lists."""
    try:
        header = orjson.loads(req_bytes[:json_length])
    except orjson.JSONDecodeError as err:
        raise InvalidInput(f"Unrecognized request format: {err}") from None
    inputs = []
    start = json_length
    for tensor in header["inputs"]:
        parameters = tensor.get("parameters")
        infer_input = InferInput(name=tensor["name"], shape=tensor["shape"], datatype=tensor["datatype"],
                                 parameters=parameters)
        data = tensor.get("data")
        if data is not None:
            if infer_input.datatype == "FP16":
                raise InvalidInput(f"Receiving FP16 data via JSON is not supported. Please use the binary data "
                                   f"format for input {infer_input.name}")
            infer_input.data = data
        elif parameters and "binary_data_size" in parameters:
            size = parameters["binary_data_size"]
            if size is None:
                raise InvalidInput(f"'binary_data_size' is not specified for input '{infer_input.name}' "
                                   f"for model '{model_name}'")
            infer_input._raw_data = req_bytes[start:start + size]
            start += size
        else:
            raise InvalidInput(f"'data' field is missing for input '{infer_input.name}' for model '{model_name}'")
        inputs.append(infer_input)
    outputs = header.get("outputs")
    return cls(
        model_name=model_name,
        request_id=header.get("id"),
        parameters=header.get("parameters"),
        infer_inputs=inputs,
        request_outputs=None if outputs is None else [
            RequestedOutput(name=output["name"], parameters=output.get("parameters")) for output in outputs
        ],
    )


def apply_torch_threads(model_cls: type[KServeModel]) -> int:
    """Set torch's intra-op threads before any work runs: ``torchThreads`` of the model folder's config,
    else the CPUs the container may use shared by the ``minWorkers`` forward passes that run at once
    (:mod:`aip_serving.threads`; torch alone would size its pool from the node's cores). Returns the
    count set. Inter-op threads are left alone: ``set_num_interop_threads`` raises once inter-op work
    has run in the process.
    """
    config = folder_config(model_cls)
    return set_process_threads(torch_threads(config), configured_workers(config))


def parse_serve_args(argv: Sequence[str] | None, *, default_name: str) -> argparse.Namespace:
    """Command-line options of a predictor; both ``--model-name`` and KServe's ``--model_name`` spellings.

    Options KServe itself understands (``--workers``, ...) are left to KServe, which reads ``sys.argv``.
    """
    parser = argparse.ArgumentParser(description=f"Serve the {default_name} model with the KServe ModelServer.")
    parser.add_argument("--model-name", "--model_name", default=default_name, help="name on the routes")
    parser.add_argument("--model-dir", "--model_dir", default=DEFAULT_MODEL_DIR, help="directory with weights.pt")
    parser.add_argument("--http-port", "--http_port", type=int, default=DEFAULT_HTTP_PORT, help="REST port")
    parser.add_argument("--grpc-port", "--grpc_port", type=int, default=DEFAULT_GRPC_PORT,
                        help="gRPC v2 port (inference.GRPCInferenceService); 0 serves no gRPC")
    parser.add_argument("--max-batch-instances", type=int, default=None,
                        help=f"instances per request; default: maxBatchInstances of {MODEL_CONFIG_FILE}")
    args, _kserve_options = parser.parse_known_args(argv)
    return args


def serve(model_cls: type[KServeModel], argv: Sequence[str] | None = None) -> None:
    """Load the model and serve it over REST, and gRPC v2 unless ``--grpc-port 0``, until SIGTERM.

    KServe's REST server binds 0.0.0.0 and its gRPC server ``[::]`` (hard-coded in 0.16): in a pod that
    is what the Service needs; on a workstation, run it behind the local-serving tool, which keeps both
    on loopback. gRPC is guarded and counted as REST is (:mod:`aip_serving.grpc_guard`).

    Always one worker process: with KServe's ``--workers`` > 1 each worker would import a fresh app,
    without the request guard (the repository API would be served again) and without the counter.
    Scale with replicas instead.
    """
    apply_torch_threads(model_cls)
    args = parse_serve_args(argv, default_name=model_cls.core_class.name)
    limit = args.max_batch_instances
    if limit is None:
        limit = max_batch_instances(folder_config(model_cls))
    model = model_cls(args.model_name, args.model_dir, max_batch_instances=limit)
    model.load()
    kserve.ModelServer(http_port=args.http_port, grpc_port=args.grpc_port, enable_grpc=args.grpc_port != 0,
                       workers=1, **SERVER_OPTIONS).start([model])
