"""Architecture of the ranker: matrix factorisation (user and item embeddings, item bias).

It is the id-only special case of a two-tower model: the user tower and the item tower are embedding
tables, and an item's score for a user is the dot product of their vectors plus the item's bias.
"""

from __future__ import annotations

import torch
from torch import nn

USERS = 600
ITEMS = 400
DIMENSIONS = 16


class MatrixFactorization(nn.Module):
    """Scores every item for a batch of users.

    Besides the learned tables it carries ``seen``, a bool buffer ``[users, items]`` of the training
    interactions, so that serving can leave out what a user already has. It is part of the
    ``state_dict`` and therefore of ``weights.pt``: the weights and the items they were fit on cannot
    drift apart.
    """

    def __init__(self, users: int = USERS, items: int = ITEMS, dimensions: int = DIMENSIONS) -> None:
        super().__init__()
        self.user_vectors = nn.Embedding(users, dimensions)
        self.item_vectors = nn.Embedding(items, dimensions)
        self.item_bias = nn.Parameter(torch.zeros(items))
        nn.init.normal_(self.user_vectors.weight, std=0.1)
        nn.init.normal_(self.item_vectors.weight, std=0.1)
        self.register_buffer("seen", torch.zeros(users, items, dtype=torch.bool))

    @property
    def users(self) -> int:
        return self.user_vectors.num_embeddings

    @property
    def items(self) -> int:
        return self.item_vectors.num_embeddings

    def forward(self, user_ids: torch.Tensor) -> torch.Tensor:
        """Scores ``[N, items]`` for user ids ``[N]`` (int64)."""
        return self.user_vectors(user_ids) @ self.item_vectors.weight.T + self.item_bias


def build_model() -> MatrixFactorization:
    """The architecture the weights were trained for."""
    return MatrixFactorization()
