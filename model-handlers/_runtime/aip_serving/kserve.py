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
hosted model gets 400 with what is wrong instead of a 500 from KServe's decoding.
``GET /v2/models/<m>`` lists the core's declared input and output tensors.
"""

from __future__ import annotations

import argparse
import inspect
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import kserve
import numpy as np
import torch
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse
from kserve.utils.numpy_codec import from_np_dtype

from aip_serving.core import ModelCore
from aip_serving.errors import InputError
from aip_serving.guard import guard_requests
from aip_serving.logs import RequestRecord, configure_request_logger, log_request
from aip_serving.metrics import count_requests
from aip_serving.model_config import MODEL_CONFIG_FILE, max_batch_instances, read_model_config
from aip_serving.protocol import v1_response

RUNTIME = "kserve"
DEFAULT_MODEL_DIR = "/mnt/models"  # where KServe's storage initializer puts a storageUri
DEFAULT_HTTP_PORT = 8080


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

    Attributes:
        core_class: The model's :class:`~aip_serving.core.ModelCore` subclass; set by each model.
        core: The loaded core, after :meth:`load`.
    """

    core_class: ClassVar[type[ModelCore[Any]]]

    def __init__(
        self,
        name: str,
        model_dir: str | Path,
        *,
        device: torch.device | str | None = None,
        max_batch_instances: int | None = None,
        version: str | None = None,
    ) -> None:
        super().__init__(name)
        self.model_dir = Path(model_dir)
        self.device = torch.device(device) if device is not None else default_device()
        self.max_batch_instances = max_batch_instances
        self.version = version or self.core_class.version
        self.core: ModelCore[Any] | None = None
        self.request_logger = None
        self.ready = False

    def load(self) -> bool:
        """Load the weights (``weights_only=True``); the server reports ready only afterwards."""
        self.core = self.core_class.load(
            self.model_dir, device=self.device, max_batch_instances=self.max_batch_instances
        )
        self.request_logger = configure_request_logger()
        self.ready = True
        return self.ready

    def start(self) -> None:
        """Guard KServe's app and count this model's requests by HTTP status on its ``/metrics``.

        ``ModelServer.start`` calls this for every model before its REST server starts, in both ways
        a predictor runs (:func:`serve` and a host serving several models), and before the app is
        built, which is when middleware must be added. The guard goes in first, so the counter, added
        after it and so outside it, counts the guard's 400s too.

        Raises:
            RuntimeError: The guard cannot be installed (the app already serves): serving without it
                would expose the repository API.
        """
        super().start()
        app = kserve.model_server.app
        if not guard_requests(app, self.name):
            raise RuntimeError("KServe's app is already serving: the request guard cannot be installed")
        count_requests(app, self.name)

    def get_input_types(self) -> list[dict[str, Any]]:
        """The v2 metadata's ``inputs`` (``GET /v2/models/<m>``): the core's declared input tensors."""
        return self.core_class.v2_metadata()[0]

    def get_output_types(self) -> list[dict[str, Any]]:
        """The v2 metadata's ``outputs``: the core's declared output tensors."""
        return self.core_class.v2_metadata()[1]

    def predict(
        self,
        payload: Mapping[str, Any] | bytes | InferRequest,
        headers: Mapping[str, str] | None = None,
    ) -> dict[str, list[Any]] | InferResponse:
        """Validate, predict the whole request in one forward pass, and answer in the request's protocol.

        Raises:
            InvalidInput: The request is malformed (HTTP 400, with the message naming what is wrong).
        """
        started = time.perf_counter()
        request_id = (headers or {}).get("x-request-id") or str(uuid.uuid4())
        instances = 0
        try:
            if isinstance(payload, InferRequest):
                rows = self._core().instances_from_tensors(tensors_of(payload))
                instances = len(rows)
                response: dict[str, list[Any]] | InferResponse = self._v2_response(
                    payload, self._core().predict(rows), request_id
                )
            else:
                rows = self._core().read_request(payload)
                instances = len(rows)
                response = v1_response(self._core().predict(rows))
        except InputError as err:
            self._log(request_id, err.http_status, started, instances, type(err).__name__)
            raise InvalidInput(err.message) from err
        except Exception as err:
            self._log(request_id, 500, started, instances, type(err).__name__)
            raise
        self._log(request_id, 200, started, instances, None)
        return response

    def _v2_response(self, request: InferRequest, predictions: Sequence[Any], request_id: str) -> InferResponse:
        outputs = []
        for name, array in self._core().tensors_from_predictions(predictions).items():
            output = InferOutput(name=name, shape=list(array.shape), datatype=from_np_dtype(array.dtype))
            output.set_data_from_numpy(array, binary_data=False)
            outputs.append(output)
        return InferResponse(
            response_id=request.id or request_id,
            model_name=self.name,
            model_version=self.version,
            infer_outputs=outputs,
        )

    def _core(self) -> ModelCore[Any]:
        if self.core is None:
            raise RuntimeError("predict() called before load()")
        return self.core

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


def parse_serve_args(argv: Sequence[str] | None, *, default_name: str) -> argparse.Namespace:
    """Command-line options of a predictor; both ``--model-name`` and KServe's ``--model_name`` spellings.

    Options KServe itself understands (``--workers``, ...) are left to KServe, which reads ``sys.argv``.
    """
    parser = argparse.ArgumentParser(description=f"Serve the {default_name} model with the KServe ModelServer.")
    parser.add_argument("--model-name", "--model_name", default=default_name, help="name on the routes")
    parser.add_argument("--model-dir", "--model_dir", default=DEFAULT_MODEL_DIR, help="directory with weights.pt")
    parser.add_argument("--http-port", "--http_port", type=int, default=DEFAULT_HTTP_PORT, help="REST port")
    parser.add_argument("--max-batch-instances", type=int, default=None,
                        help=f"instances per request; default: maxBatchInstances of {MODEL_CONFIG_FILE}")
    args, _kserve_options = parser.parse_known_args(argv)
    return args


def serve(model_cls: type[KServeModel], argv: Sequence[str] | None = None) -> None:
    """Load the model and serve it over REST until SIGTERM (gRPC off).

    KServe's REST server binds 0.0.0.0 (hard-coded in 0.16): in a pod that is what the Service needs;
    on a workstation, run it behind the local-serving tool, which keeps it on loopback.

    Always one worker process: with KServe's ``--workers`` > 1 each worker would import a fresh app,
    without the request guard (the repository API would be served again) and without the counter.
    Scale with replicas instead.
    """
    args = parse_serve_args(argv, default_name=model_cls.core_class.name)
    limit = args.max_batch_instances
    if limit is None:
        # The model folder's config travels with predictor.py (in the repository and in the image).
        folder = Path(inspect.getfile(model_cls)).resolve().parent
        limit = max_batch_instances(read_model_config(folder / MODEL_CONFIG_FILE))
    model = model_cls(args.model_name, args.model_dir, max_batch_instances=limit)
    model.load()
    kserve.ModelServer(http_port=args.http_port, enable_grpc=False, workers=1).start([model])
