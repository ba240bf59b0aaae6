"""A deterministic synthetic implicit-feedback dataset with latent structure (no download).

The generative story, so that a recommender has something real to learn and popularity alone does not
suffice: items belong to one of ``TOPICS`` topics and have a long-tailed popularity; each user likes a
few topics (a sparse Dirichlet mixture); a user's interactions are drawn without replacement with
probability proportional to ``popularity ** POPULARITY_WEIGHT * (taste for the item's topic + noise)``.
Each user's interactions are split at random into training and held-out test items.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

USERS = 600
ITEMS = 400
TOPICS = 12
MIN_INTERACTIONS = 12
MAX_INTERACTIONS = 48
TEST_FRACTION = 0.25
POPULARITY_WEIGHT = 0.6
TASTE_CONCENTRATION = 0.15  # Dirichlet alpha: small, so most users like one to three topics
TASTE_FLOOR = 0.01  # any user may still stumble on any topic


@dataclass(frozen=True)
class Interactions:
    """Who interacted with what, split per user.

    Attributes:
        train: Bool matrix ``[USERS, ITEMS]``, interactions to learn from (and to exclude when serving).
        test: Bool matrix ``[USERS, ITEMS]``, held-out interactions to evaluate on; disjoint from train.
        item_topic: Topic of each item, ``[ITEMS]``.
    """

    train: np.ndarray
    test: np.ndarray
    item_topic: np.ndarray


def make_interactions(seed: int, *, users: int = USERS, items: int = ITEMS) -> Interactions:
    """Generate the dataset; the same seed gives the same matrices on any machine (numpy's PCG64)."""
    rng = np.random.default_rng(seed)
    item_topic = rng.integers(0, TOPICS, size=items)
    # Zipf-like popularity over a random item order, so popularity is independent of topic.
    popularity = 1.0 / (rng.permutation(items) + 10.0)
    tastes = rng.dirichlet(np.full(TOPICS, TASTE_CONCENTRATION), size=users)

    train = np.zeros((users, items), dtype=bool)
    test = np.zeros((users, items), dtype=bool)
    for user in range(users):
        weights = popularity**POPULARITY_WEIGHT * (tastes[user, item_topic] + TASTE_FLOOR)
        count = int(rng.integers(MIN_INTERACTIONS, MAX_INTERACTIONS + 1))
        chosen = rng.choice(items, size=count, replace=False, p=weights / weights.sum())
        held_out = max(1, round(count * TEST_FRACTION))
        test[user, chosen[:held_out]] = True
        train[user, chosen[held_out:]] = True
    return Interactions(train=train, test=test, item_topic=item_topic)


def recall_at_k(scores: np.ndarray, interactions: Interactions, k: int) -> float:
    """Mean over users of hits in the top ``k`` unseen items / ``min(k, held-out items)``.

    Training items are excluded from the ranking, as they are when serving.
    """
    masked = np.where(interactions.train, -np.inf, scores)
    top = np.argpartition(-masked, k, axis=1)[:, :k]
    hits = np.take_along_axis(interactions.test, top, axis=1).sum(axis=1)
    relevant = np.minimum(interactions.test.sum(axis=1), k)
    return float(np.mean(hits / relevant))


def popularity_scores(interactions: Interactions) -> np.ndarray:
    """The baseline: every user gets items ranked by how many users interacted with them in training."""
    counts = interactions.train.sum(axis=0).astype(np.float64)
    return np.broadcast_to(counts, interactions.train.shape)
