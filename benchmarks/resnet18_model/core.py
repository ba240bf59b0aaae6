"""Serving core of the benchmark's ResNet-18-sized CNN: uint8-range RGB images in, top-5 classes out.

Instance: ``[3][S][S]`` numbers in [0, 255] (channels first, ``S`` from ``input.json``, see ``model.py``).
Integer pixels keep a request's JSON small and quick to parse: a 224x224 image is about 0.54 MB as
integers and 2.9 MB as floats, and parsing the floats takes about 6x longer.
Prediction: ``{"classes": [5 class ids, best first], "probabilities": [5 floats]}``.
v2: input ``image`` of shape ``[N, 3, S, S]`` (UINT8 is the compact choice, any number datatype works);
outputs ``classes`` (INT64 ``[N, 5]``) and ``probabilities`` (FP32 ``[N, 5]``). A binary v2 request is
checked as one array and its images stay numpy arrays until they are stacked into the batch.

Instances are checked with vectorised numpy (shape, numeric type, finiteness, range) rather than the
per-value loop of ``aip_serving.checks.finite_numbers``: 150,528 values per image. When ``body`` reaches
``read_request`` as raw bytes (TorchServe without ``Content-Type: application/json``) it is parsed with
orjson where installed: the benchmark compares that with TorchServe's own ``json.loads``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from aip_serving.checks import json_type
from aip_serving.core import ModelCore, Prediction, TensorSpec, check_lengths
from aip_serving.errors import InputError
from aip_serving.protocol import read_instances
from aip_serving.tensors import NUMBER_KINDS, check_input_names, check_kind, check_rows, check_values

from model import CHANNELS, MAX_PIXEL, ResNet18, build_model, image_side

try:
    import orjson
except ImportError:  # pragma: no cover - orjson comes with kserve
    orjson = None

TOP = 5
DECIMALS = 6
V2_INPUT = "image"


class ResNetCore(ModelCore[np.ndarray]):
    """Validates images, classifies a batch in one pass, answers the top-5 classes."""

    name = "resnet18"
    default_max_batch_instances = 16
    # The side S comes from input.json when the core is built, so the declarations leave it open (-1).
    v2_inputs: ClassVar[Mapping[str, str]] = {V2_INPUT: f"[N, {CHANNELS}, S, S] pixels in 0..{MAX_PIXEL:.0f}"}
    v2_input_specs: ClassVar[Mapping[str, TensorSpec]] = {V2_INPUT: TensorSpec("UINT8", (-1, CHANNELS, -1, -1))}
    v2_outputs: ClassVar[Mapping[str, type[np.generic]]] = {"classes": np.int64, "probabilities": np.float32}
    v2_output_shapes: ClassVar[Mapping[str, tuple[int, ...]]] = {"classes": (-1, TOP), "probabilities": (-1, TOP)}

    def __init__(self, model: torch.nn.Module, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        self.side = image_side()
        self.shape = (CHANNELS, self.side, self.side)

    @classmethod
    def build_model(cls) -> ResNet18:
        return build_model()

    def read_request(self, body: Any) -> list[Any]:
        if orjson is not None and isinstance(body, (bytes, bytearray, memoryview)):
            # A body orjson refuses goes on as it is: read_instances reports it with the usual message.
            with contextlib.suppress(orjson.JSONDecodeError):
                body = orjson.loads(body)
        return read_instances(body)

    def decode_instance(self, path: str, instance: Any) -> np.ndarray:
        expected = f"{CHANNELS}x{self.side}x{self.side} numbers in [0, {MAX_PIXEL:.0f}] (channels, rows, columns)"
        if not isinstance(instance, list):
            raise InputError(f"{path}: expected {expected}, got {json_type(instance)}")
        try:
            pixels = np.asarray(instance)
        except ValueError:
            raise InputError(f"{path}: expected {expected}, got ragged rows") from None
        if pixels.shape != self.shape:
            raise InputError(f"{path}: expected {expected}, got shape {list(pixels.shape)}")
        if pixels.dtype.kind not in "iuf":  # strings, booleans, objects
            raise InputError(f"{path}: expected {expected}, got values of type {pixels.dtype.name}")
        if pixels.dtype.kind == "f" and not np.isfinite(pixels).all():
            raise InputError(f"{path}: expected {expected}, got a non-finite value")
        if pixels.min() < 0 or pixels.max() > MAX_PIXEL:
            raise InputError(f"{path}: expected {expected}, got values in [{pixels.min()}, {pixels.max()}]")
        return pixels.astype(np.float32, copy=False)

    def decode_tensors(self, tensors: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        check_input_names(tensors, self.v2_inputs, required=(V2_INPUT,))
        image = tensors[V2_INPUT]
        check_kind(V2_INPUT, image, NUMBER_KINDS, f"pixels in [0, {MAX_PIXEL:.0f}] (UINT8, FP32 or other numbers)")
        if image.ndim != 4 or image.shape[1:] != self.shape:
            raise InputError(f'input "{V2_INPUT}": expected shape [N, {CHANNELS}, {self.side}, {self.side}] '
                             f"(channels, rows, columns), got {list(image.shape)}")
        check_rows(V2_INPUT, len(image), self.max_batch_instances)
        check_values(V2_INPUT, image, low=0, high=MAX_PIXEL)
        # One float32 view per image (a copy only when the client sent another datatype).
        return list(image.astype(np.float32, copy=False))

    def collate(self, decoded: Sequence[np.ndarray]) -> torch.Tensor:
        return torch.from_numpy(np.stack(decoded)).to(self.device)

    def forward(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        top = torch.topk(torch.softmax(self.model(inputs), dim=1), TOP, dim=1)
        return top.values, top.indices

    def encode(self, outputs: tuple[torch.Tensor, torch.Tensor], decoded: Sequence[np.ndarray]) -> list[Prediction]:
        values, indices = outputs
        classes, probabilities = indices.cpu().tolist(), values.float().cpu().tolist()
        check_lengths(classes=classes, probabilities=probabilities, decoded=decoded)
        return [
            {"classes": top, "probabilities": [round(p, DECIMALS) for p in scores]}
            for top, scores in zip(classes, probabilities)
        ]
