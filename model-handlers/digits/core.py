"""Serving core of the digits classifier: 8x8 images in, a label and class probabilities out.

Instance: 64 numbers (row-major) or 8 rows of 8 numbers, each in [0, 16] (scikit-learn's scale).
Prediction: ``{"label": 3, "probabilities": [10 floats summing to 1]}``.
v2: input ``image`` of shape ``[N, 64]`` or ``[N, 8, 8]``; outputs ``label`` (INT64 ``[N]``) and
``probabilities`` (FP32 ``[N, 10]``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Union

import numpy as np
import torch
from aip_serving.checks import finite_numbers, json_type
from aip_serving.core import ModelCore, Prediction, TensorSpec, check_lengths
from aip_serving.errors import InputError
from aip_serving.tensors import NUMBER_KINDS, check_input_names, check_kind, check_rows, check_values
from model import CLASSES, IMAGE_SIDE, MAX_PIXEL, PIXELS, DigitsCNN, build_model

IMAGE = f"an {IMAGE_SIDE}x{IMAGE_SIDE} image"
V2_INPUT = "image"
# Six decimals keep answers small; the probabilities still sum to 1 within 1e-5.
DECIMALS = 6

Pixels = Union[list[float], np.ndarray]
"""One decoded image, 64 pixels: Python floats from a v1 instance, a float32 row from a v2 tensor."""


class DigitsCore(ModelCore[Pixels]):
    """Validates images, classifies a batch in one pass, answers label and probabilities."""

    name = "digits"
    default_max_batch_instances = 64
    v2_inputs: ClassVar[Mapping[str, str]] = {V2_INPUT: f"[N, {PIXELS}] or [N, {IMAGE_SIDE}, {IMAGE_SIDE}], 0..16"}
    v2_input_specs: ClassVar[Mapping[str, TensorSpec]] = {V2_INPUT: TensorSpec("FP32", (-1, PIXELS))}
    v2_outputs: ClassVar[Mapping[str, type[np.generic]]] = {"label": np.int64, "probabilities": np.float32}
    v2_output_shapes: ClassVar[Mapping[str, tuple[int, ...]]] = {"label": (-1,), "probabilities": (-1, CLASSES)}

    @classmethod
    def build_model(cls) -> DigitsCNN:
        return build_model()

    def decode_instance(self, path: str, instance: Any) -> list[float]:
        if not isinstance(instance, (list, tuple)):
            raise InputError(
                f"{path}: expected {PIXELS} numbers or {IMAGE_SIDE} rows of {IMAGE_SIDE} numbers ({IMAGE}), "
                f"got {json_type(instance)}"
            )
        if instance and isinstance(instance[0], (list, tuple)):
            return self._decode_rows(path, instance)
        if len(instance) != PIXELS:
            raise InputError(f"{path}: expected {PIXELS} numbers ({IMAGE}), got {len(instance)}")
        return finite_numbers(path, instance, low=0, high=MAX_PIXEL)

    def _decode_rows(self, path: str, rows: Sequence[Any]) -> list[float]:
        if len(rows) != IMAGE_SIDE:
            raise InputError(
                f"{path}: expected {IMAGE_SIDE} rows of {IMAGE_SIDE} numbers ({IMAGE}), got {len(rows)} rows"
            )
        pixels: list[float] = []
        for index, row in enumerate(rows):
            row_path = f"{path}[{index}]"
            if not isinstance(row, (list, tuple)):
                raise InputError(f"{row_path}: expected a row of {IMAGE_SIDE} numbers, got {json_type(row)}")
            if len(row) != IMAGE_SIDE:
                raise InputError(f"{row_path}: expected {IMAGE_SIDE} numbers, got {len(row)}")
            pixels.extend(finite_numbers(row_path, row, low=0, high=MAX_PIXEL))
        return pixels

    def collate(self, decoded: Sequence[Pixels]) -> torch.Tensor:
        batch = np.stack([np.asarray(pixels, dtype=np.float32) for pixels in decoded])
        return torch.from_numpy(batch).to(self.device)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        # Softmax on the device: only [N, 10] probabilities travel back.
        return torch.softmax(self.model(inputs), dim=1)

    def encode(self, outputs: torch.Tensor, decoded: Sequence[Pixels]) -> list[Prediction]:
        probabilities = outputs.float().cpu()
        labels = probabilities.argmax(dim=1).tolist()
        rows = probabilities.tolist()
        check_lengths(labels=labels, probabilities=rows, decoded=decoded)
        return [
            {"label": label, "probabilities": [round(p, DECIMALS) for p in row]}
            for label, row in zip(labels, rows)
        ]

    def instances_from_tensors(self, tensors: Mapping[str, np.ndarray]) -> list[Any]:
        unknown = sorted(set(tensors) - {V2_INPUT})
        if unknown:
            raise InputError(f'unknown input "{unknown[0]}" (expected: {V2_INPUT})')
        if V2_INPUT not in tensors:
            raise InputError(f'missing input "{V2_INPUT}" ({self.v2_inputs[V2_INPUT]})')
        image = tensors[V2_INPUT]
        if image.ndim not in (2, 3):
            raise InputError(
                f'input "{V2_INPUT}": expected shape [N, {PIXELS}] or [N, {IMAGE_SIDE}, {IMAGE_SIDE}], '
                f"got {list(image.shape)}"
            )
        # Rows go through the same checks as v1 instances (dtype, NaN, range, shape).
        return image.tolist()

    def decode_tensors(self, tensors: Mapping[str, np.ndarray]) -> list[Pixels]:
        check_input_names(tensors, self.v2_inputs, required=(V2_INPUT,))
        image = tensors[V2_INPUT]
        check_kind(V2_INPUT, image, NUMBER_KINDS, f"pixels in [0, {MAX_PIXEL:g}] (FP32 or another number datatype)")
        if image.ndim < 2 or image.shape[1:] not in ((PIXELS,), (IMAGE_SIDE, IMAGE_SIDE)):
            raise InputError(
                f'input "{V2_INPUT}": expected shape [N, {PIXELS}] or [N, {IMAGE_SIDE}, {IMAGE_SIDE}], '
                f"got {list(image.shape)}"
            )
        check_rows(V2_INPUT, len(image), self.max_batch_instances)
        check_values(V2_INPUT, image, low=0, high=MAX_PIXEL)
        # Views of one float32 array (no copy when the client sent FP32): collate stacks them as they are.
        return list(image.reshape(len(image), PIXELS).astype(np.float32, copy=False))
