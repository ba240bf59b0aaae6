"""The runtime-neutral model core: load, validate and decode a batch, one forward pass, encode.

Both adapters (:mod:`aip_serving.torchserve`, :mod:`aip_serving.kserve`) only move requests in and
answers out; everything a model decides lives in its :class:`ModelCore` subclass, so it is tested once,
without a server, and behaves the same under both runtimes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence, Sized
from pathlib import Path
from typing import Any, ClassVar, Generic, NamedTuple, TypeVar

import numpy as np
import torch
from torch import nn

from aip_serving.errors import InputError
from aip_serving.protocol import INSTANCES, read_instances, v1_response

DecodedT = TypeVar("DecodedT")
"""What one validated instance becomes before collation (a row of numbers, a small dataclass...)."""

CoreT = TypeVar("CoreT", bound="ModelCore[Any]")
"""The concrete core class :meth:`ModelCore.load` builds (``typing.Self`` needs Python 3.11; images run 3.9)."""

Prediction = dict[str, Any]
"""One instance's answer: a JSON-able object."""

# v2 datatype of each numpy scalar type an output may have.
V2_DATATYPES: Mapping[type[np.generic], str] = {
    np.bool_: "BOOL", np.uint8: "UINT8", np.uint16: "UINT16", np.uint32: "UINT32", np.uint64: "UINT64",
    np.int8: "INT8", np.int16: "INT16", np.int32: "INT32", np.int64: "INT64",
    np.float16: "FP16", np.float32: "FP32", np.float64: "FP64",
}


class TensorSpec(NamedTuple):
    """A v2 tensor as the model metadata (``GET /v2/models/<m>``) lists it.

    Attributes:
        datatype: v2 datatype (``FP32``, ``INT64``, ``BOOL``...).
        shape: Dimensions; ``-1`` for a variable one (the batch).
    """

    datatype: str
    shape: tuple[int, ...]

    def metadata(self, name: str) -> dict[str, Any]:
        return {"name": name, "datatype": self.datatype, "shape": list(self.shape)}


def check_lengths(**sequences: Sized) -> None:
    """Fail unless every sequence has the same length: ``zip(..., strict=True)`` for Python 3.9.

    Raises:
        RuntimeError: The lengths differ (a bug in the model code, not a client error).
    """
    lengths = {name: len(sequence) for name, sequence in sequences.items()}
    if len(set(lengths.values())) > 1:
        raise RuntimeError(f"sequences of different lengths: {lengths}")


class ModelCore(ABC, Generic[DecodedT]):
    """Base class of a model's serving core.

    A subclass names the model and its architecture and fills in four steps; the base class runs them
    in order, always with every instance of a batch in one forward pass:

    1. :meth:`decode_instance` validates one JSON instance and decodes it (raise
       :class:`~aip_serving.errors.InputError` with a message starting with the instance's path);
    2. :meth:`collate` turns the decoded instances into the model's batch input, on :attr:`device`;
    3. :meth:`forward` runs the model once, under ``torch.inference_mode()``;
    4. :meth:`encode` turns the outputs into one JSON-able prediction per instance.

    For the KServe v2 protocol a subclass also maps named input tensors to instances
    (:meth:`instances_from_tensors`, or straight to decoded rows with :meth:`decode_tensors`) and
    declares its input tensors (:attr:`v2_inputs`, :attr:`v2_input_specs`) and output tensors
    (:attr:`v2_outputs`, :attr:`v2_output_shapes`), which the v2 model metadata lists (:meth:`v2_metadata`).

    Attributes:
        name: The model's name (its folder under ``model-handlers/``).
        version: Version reported when the runtime knows no better (TorchServe takes the archive's).
        weights_file: File name of the ``state_dict`` inside a model directory.
        default_max_batch_instances: Limit on instances per request when the config sets none.
        v2_inputs: Names of the v2 input tensors, each with a short description for messages.
        v2_input_specs: Datatype and shape of each v2 input tensor (same keys as :attr:`v2_inputs`).
        v2_outputs: Names of the v2 output tensors (keys of each prediction) and their numpy dtypes.
        v2_output_shapes: Shape of each v2 output tensor (same keys as :attr:`v2_outputs`; -1 variable).
        model: The loaded module, in eval mode, on :attr:`device`.
        device: Where the model and its inputs live.
        max_batch_instances: The most instances one request may carry.
    """

    name: ClassVar[str]
    version: ClassVar[str] = "1"
    weights_file: ClassVar[str] = "weights.pt"
    default_max_batch_instances: ClassVar[int] = 64
    v2_inputs: ClassVar[Mapping[str, str]] = {}
    v2_input_specs: ClassVar[Mapping[str, TensorSpec]] = {}
    v2_outputs: ClassVar[Mapping[str, type[np.generic]]] = {}
    v2_output_shapes: ClassVar[Mapping[str, tuple[int, ...]]] = {}

    def __init__(
        self,
        model: nn.Module,
        *,
        device: torch.device | str = "cpu",
        max_batch_instances: int | None = None,
    ) -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        limit = self.default_max_batch_instances if max_batch_instances is None else max_batch_instances
        if limit < 1:
            raise ValueError(f"max_batch_instances must be positive, got {limit}")
        self.max_batch_instances = limit

    # -- what a subclass provides -------------------------------------------------------------------

    @classmethod
    @abstractmethod
    def build_model(cls) -> nn.Module:
        """The architecture with fresh weights (usually ``model.build_model()``)."""

    @abstractmethod
    def decode_instance(self, path: str, instance: Any) -> DecodedT:
        """Validate and decode one instance; ``path`` (``instances[3]``) starts every error message."""

    @abstractmethod
    def collate(self, decoded: Sequence[DecodedT]) -> Any:
        """The model's input for the whole batch, on :attr:`device`."""

    @abstractmethod
    def encode(self, outputs: Any, decoded: Sequence[DecodedT]) -> list[Prediction]:
        """One JSON-able prediction per instance, in order, from :meth:`forward`'s outputs."""

    def forward(self, inputs: Any) -> Any:
        """Run the model on a batch (called once per batch, already under ``torch.inference_mode()``).

        Override to post-process on the device (softmax, top-k) so that only small tensors are copied
        back to the host.
        """
        return self.model(inputs)

    def instances_from_tensors(self, tensors: Mapping[str, np.ndarray]) -> list[Any]:
        """The v1-style instances a v2 request's named input tensors stand for.

        Raises:
            InputError: This model does not speak v2, or an input is unknown, missing or misshapen.
        """
        raise InputError(f"model {self.name} does not accept v2 (tensor) requests: send {{\"{INSTANCES}\": [...]}}")

    def decode_tensors(self, tensors: Mapping[str, np.ndarray]) -> list[DecodedT]:
        """Validate a v2 request's named input tensors and decode them into rows :meth:`collate` accepts.

        By default the tensors become v1 instances (:meth:`instances_from_tensors`) that go through the
        v1 checks value by value. A model whose inputs are large arrays overrides this with vectorised
        checks (:mod:`aip_serving.tensors`) that keep each row a numpy array: binary tensors then never
        become Python numbers.

        Raises:
            InputError: What is wrong, naming the input tensor (and the row, where it matters).
        """
        return self.decode_instances(self.instances_from_tensors(tensors))

    @classmethod
    def v2_metadata(cls) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The v2 model metadata's ``inputs`` and ``outputs``: name, datatype and shape of each tensor.

        Raises:
            ValueError: A declared tensor has no datatype or shape (a model's declarations are incomplete).
        """
        missing = sorted(set(cls.v2_inputs) ^ set(cls.v2_input_specs)) + sorted(
            set(cls.v2_outputs) ^ set(cls.v2_output_shapes))
        if missing:
            raise ValueError(f"model {cls.name}: v2 tensors declared without datatype or shape, or the reverse: "
                             f"{', '.join(missing)}")
        inputs = [cls.v2_input_specs[name].metadata(name) for name in cls.v2_inputs]
        outputs = [TensorSpec(V2_DATATYPES[np.dtype(dtype).type], cls.v2_output_shapes[name]).metadata(name)
                   for name, dtype in cls.v2_outputs.items()]
        return inputs, outputs

    # -- loading --------------------------------------------------------------------------------------

    @classmethod
    def load(
        cls: type[CoreT],
        model_dir: str | Path,
        *,
        device: torch.device | str = "cpu",
        max_batch_instances: int | None = None,
        weights_file: str | None = None,
    ) -> CoreT:
        """Build the architecture and load its trained ``state_dict`` from ``model_dir``.

        ``weights_only=True`` makes ``torch.load`` refuse anything but tensors and plain containers,
        so a tampered weights file cannot run code when a worker starts.

        Raises:
            FileNotFoundError: No weights file in ``model_dir``.
            RuntimeError: The weights do not fit the architecture (strict loading).
        """
        path = Path(model_dir) / (weights_file or cls.weights_file)
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist: train the model first (python train.py --out {model_dir})")
        state = torch.load(path, map_location="cpu", weights_only=True)
        model = cls.build_model()
        model.load_state_dict(state, strict=True)
        return cls(model, device=device, max_batch_instances=max_batch_instances)

    # -- serving --------------------------------------------------------------------------------------

    def read_request(self, body: Any) -> list[Any]:
        """The instances of a v1 body (bytes, text or decoded JSON); :meth:`decode_instances` checks them."""
        return read_instances(body)

    def check_batch_size(self, count: int) -> None:
        """Refuse an empty batch and one larger than :attr:`max_batch_instances`."""
        if count == 0:
            raise InputError(f'"{INSTANCES}" is empty: send at least one instance')
        if count > self.max_batch_instances:
            raise InputError(
                f'"{INSTANCES}" has {count} instances, more than the limit of {self.max_batch_instances} per request'
            )

    def decode_instances(self, instances: Sequence[Any]) -> list[DecodedT]:
        """Validate every instance and decode it, reporting the problems of all instances at once.

        Raises:
            InputError: One message listing each bad instance's first problem.
        """
        self.check_batch_size(len(instances))
        decoded: list[DecodedT] = []
        problems: list[str] = []
        for index, instance in enumerate(instances):
            try:
                decoded.append(self.decode_instance(f"{INSTANCES}[{index}]", instance))
            except InputError as err:
                problems.extend(err.problems)
        if problems:
            raise InputError.from_problems(problems)
        return decoded

    def predict_decoded(self, decoded: Sequence[DecodedT]) -> list[Prediction]:
        """Predict already-validated instances, possibly from several requests, in ONE forward pass.

        This is the entry point for runtimes that batch requests (TorchServe, and the KServe predictor's
        :class:`~aip_serving.batching.GreedyBatcher`): they decode each request
        on its own, so one bad request cannot fail the others, then predict all of them together.
        """
        if not decoded:
            return []
        inputs = self.collate(decoded)
        with torch.inference_mode():
            outputs = self.forward(inputs)
        predictions = self.encode(outputs, decoded)
        if len(predictions) != len(decoded):
            raise RuntimeError(f"{type(self).__name__}.encode returned {len(predictions)} predictions "
                               f"for {len(decoded)} instances")
        return predictions

    def predict(self, instances: Sequence[Any]) -> list[Prediction]:
        """Validate, decode and predict a list of instances."""
        return self.predict_decoded(self.decode_instances(instances))

    def predict_body(self, body: Any) -> dict[str, list[Any]]:
        """The whole v1 exchange: a body in, ``{"predictions": [...]}`` out."""
        return v1_response(self.predict(self.read_request(body)))

    def tensors_from_predictions(self, predictions: Sequence[Prediction]) -> dict[str, np.ndarray]:
        """The v2 output tensors: each key of :attr:`v2_outputs`, stacked over the batch."""
        return {
            name: np.asarray([prediction[name] for prediction in predictions], dtype=dtype)
            for name, dtype in self.v2_outputs.items()
        }
