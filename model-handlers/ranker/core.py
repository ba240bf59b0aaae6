"""Serving core of the ranker: a user id in, that user's top-k items with scores out.

Instance: ``{"user_id": 42, "k": 10, "exclude_seen": true}``; ``k`` (1..100) defaults to 10 and
``exclude_seen`` (leave out items the user interacted with in training) to true.
Prediction: ``{"items": [k item ids, best first], "scores": [k floats]}``.
v2: inputs ``user_id`` (INT64 ``[N]``), optional ``k`` and ``exclude_seen`` (one value, or one per
user); outputs ``items`` (INT64 ``[N, k]``) and ``scores`` (FP32 ``[N, k]``), so every row of a v2
request must ask for the same ``k``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from aip_serving.checks import boolean, integer, json_object
from aip_serving.core import ModelCore, Prediction, TensorSpec, check_lengths
from aip_serving.errors import InputError
from aip_serving.tensors import (
    INTEGER_KINDS,
    check_input_names,
    check_kind,
    check_rows,
    check_values,
    one_or_per_row,
    row_problems,
)
from model import MatrixFactorization, build_model

DEFAULT_K = 10
MAX_K = 100
EXAMPLE = '{"user_id": 42, "k": 10}'
# Scores are logits; four decimals separate neighbours and keep answers small.
DECIMALS = 4


@dataclass(frozen=True)
class Query:
    """One validated instance."""

    user_id: int
    k: int
    exclude_seen: bool


class RankerCore(ModelCore[Query]):
    """Validates queries, scores every item for the whole batch in one pass, answers each user's top k."""

    name = "ranker"
    default_max_batch_instances = 256
    v2_inputs: ClassVar[Mapping[str, str]] = {
        "user_id": "INT64 [N]",
        "k": f"INT64, one value or one per user, 1..{MAX_K}",
        "exclude_seen": "BOOL, one value or one per user",
    }
    v2_input_specs: ClassVar[Mapping[str, TensorSpec]] = {
        "user_id": TensorSpec("INT64", (-1,)),
        "k": TensorSpec("INT64", (-1,)),
        "exclude_seen": TensorSpec("BOOL", (-1,)),
    }
    v2_outputs: ClassVar[Mapping[str, type[np.generic]]] = {"items": np.int64, "scores": np.float32}
    # [N, k]: every user of a v2 request gets the same k.
    v2_output_shapes: ClassVar[Mapping[str, tuple[int, ...]]] = {"items": (-1, -1), "scores": (-1, -1)}

    model: MatrixFactorization

    @classmethod
    def build_model(cls) -> MatrixFactorization:
        return build_model()

    def decode_instance(self, path: str, instance: Any) -> Query:
        fields = json_object(path, instance, required=("user_id",), optional=("k", "exclude_seen"), example=EXAMPLE)
        user_id = integer(f"{path}.user_id", fields["user_id"])
        if not 0 <= user_id < self.model.users:
            raise InputError(f"{path}.user_id: unknown user id {user_id} (known ids: 0..{self.model.users - 1})")
        k = integer(f"{path}.k", fields.get("k", DEFAULT_K), low=1, high=MAX_K)
        exclude_seen = boolean(f"{path}.exclude_seen", fields.get("exclude_seen", True))
        return Query(user_id=user_id, k=k, exclude_seen=exclude_seen)

    def collate(self, decoded: Sequence[Query]) -> tuple[torch.Tensor, torch.Tensor, int]:
        users = torch.tensor([query.user_id for query in decoded], dtype=torch.int64, device=self.device)
        exclude = torch.tensor([query.exclude_seen for query in decoded], dtype=torch.bool, device=self.device)
        return users, exclude, max(query.k for query in decoded)

    def forward(self, inputs: tuple[torch.Tensor, torch.Tensor, int]) -> tuple[torch.Tensor, torch.Tensor]:
        users, exclude, k = inputs
        scores = self.model(users)
        # MAX_K is far below the items any user has not seen, so no -inf ever reaches the top k.
        hidden = self.model.seen[users] & exclude.unsqueeze(1)
        top = torch.topk(scores.masked_fill(hidden, float("-inf")), k, dim=1)
        return top.values, top.indices

    def encode(self, outputs: tuple[torch.Tensor, torch.Tensor], decoded: Sequence[Query]) -> list[Prediction]:
        values, indices = (tensor.cpu().tolist() for tensor in outputs)
        check_lengths(decoded=decoded, items=indices, scores=values)
        return [
            {"items": items[: query.k], "scores": [round(score, DECIMALS) for score in scores[: query.k]]}
            for query, items, scores in zip(decoded, indices, values)
        ]

    def instances_from_tensors(self, tensors: Mapping[str, np.ndarray]) -> list[Any]:
        unknown = sorted(set(tensors) - set(self.v2_inputs))
        if unknown:
            raise InputError(f'unknown input "{unknown[0]}" (expected: {", ".join(self.v2_inputs)})')
        if "user_id" not in tensors:
            raise InputError(f'missing input "user_id" ({self.v2_inputs["user_id"]})')
        user_ids = tensors["user_id"]
        if user_ids.ndim == 2 and user_ids.shape[1] == 1:
            user_ids = user_ids.reshape(-1)
        if user_ids.ndim != 1:
            raise InputError(f'input "user_id": expected shape [N], got {list(user_ids.shape)}')
        rows = len(user_ids)
        ks = per_row(tensors, "k", rows, DEFAULT_K)
        if len(set(ks)) > 1:
            raise InputError('input "k": a v2 request answers [N, k] tensors, so every user needs the same k')
        exclude = per_row(tensors, "exclude_seen", rows, True)
        user_list = user_ids.tolist()
        check_lengths(user_id=user_list, k=ks, exclude_seen=exclude)
        # Python values (tolist) so the v1 checks see the same types JSON would give them.
        return [
            {"user_id": user, "k": k, "exclude_seen": skip}
            for user, k, skip in zip(user_list, ks, exclude)
        ]

    def decode_tensors(self, tensors: Mapping[str, np.ndarray]) -> list[Query]:
        check_input_names(tensors, self.v2_inputs, required=("user_id",))
        user_ids = tensors["user_id"]
        check_kind("user_id", user_ids, INTEGER_KINDS, "integer user ids (INT64 or another integer datatype)")
        if user_ids.ndim == 2 and user_ids.shape[1] == 1:
            user_ids = user_ids.reshape(-1)
        if user_ids.ndim != 1:
            raise InputError(f'input "user_id": expected shape [N], got {list(user_ids.shape)}')
        rows = len(user_ids)
        check_rows("user_id", rows, self.max_batch_instances)
        users = self.model.users
        known = (user_ids >= 0) & (user_ids < users)
        if not known.all():
            raise InputError.from_problems(row_problems(
                "user_id", user_ids, known, lambda user: f"unknown user id {user} (known ids: 0..{users - 1})"))
        k = DEFAULT_K
        if "k" in tensors:
            check_kind("k", tensors["k"], INTEGER_KINDS, f"integers in [1, {MAX_K}] (INT64 or another integer type)")
            ks = one_or_per_row("k", tensors["k"], rows, "user")
            check_values("k", ks, low=1, high=MAX_K)
            if (ks != ks[0]).any():
                raise InputError('input "k": a v2 request answers [N, k] tensors, so every user needs the same k')
            k = int(ks[0])
        exclude = np.ones(rows, dtype=bool)
        if "exclude_seen" in tensors:
            check_kind("exclude_seen", tensors["exclude_seen"], "b", "BOOL (true or false)")
            exclude = one_or_per_row("exclude_seen", tensors["exclude_seen"], rows, "user")
        # One small record per user: the ids, not image-sized rows, are what becomes Python values here.
        return [
            Query(user_id=user, k=k, exclude_seen=skip)
            for user, skip in zip(user_ids.tolist(), exclude.tolist())
        ]


def per_row(tensors: Mapping[str, np.ndarray], name: str, rows: int, default: Any) -> list[Any]:
    """An optional v2 input as one Python value per row: absent, one value for all, or one per row."""
    if name not in tensors:
        return [default] * rows
    values = tensors[name].reshape(-1).tolist()
    if len(values) == 1:
        return values * rows
    if len(values) != rows:
        raise InputError(f'input "{name}": expected 1 or {rows} values (one per user), got {len(values)}')
    return values
