"""Presentation orders: neutral labels, seeded shuffles, and mapping ranks back to models.

The order of one judgment is a pure function of (salt, prompt id, judge, repetition), so a
re-run shows the judge exactly what it saw before, and the order is returned with the result.
With ``orders="all"`` repetition r is the r-th permutation in lexicographic order of the
canonical positions (identity first), which covers every position for every model.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import random
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from harmrank.common.contracts.judging import Orders
from harmrank.common.errors import InvalidInput

MAX_ALL_PERMUTATIONS_MODELS = 4  # 4! = 24 calls per item is the most we let one request cost
LABELS = string.ascii_uppercase


def labels_for(n: int) -> list[str]:
    return list(LABELS[:n])


@dataclass(frozen=True)
class Presentation:
    """The models in the order shown; ``labels[i]`` names ``order[i]``."""

    repetition: int
    order: tuple[str, ...]

    @property
    def labels(self) -> list[str]:
        return labels_for(len(self.order))

    def label_map(self) -> dict[str, str]:
        return dict(zip(self.labels, self.order, strict=True))

    def to_model_order(self, by_label: Mapping[str, int], models: Sequence[str]) -> list[int]:
        """Ranks keyed by label -> ranks in canonical model order."""
        by_model = {model: by_label[label] for label, model in self.label_map().items()}
        return [by_model[m] for m in models]


def order_seed(salt: str, prompt_id: str, judge: str, repetition: int) -> int:
    # sha256 rather than hash(): str hashes are salted per process, and orders must be stable.
    digest = hashlib.sha256(f"{salt}\x1f{prompt_id}\x1f{judge}\x1f{repetition}".encode())
    return int.from_bytes(digest.digest()[:8], "big")


def seeded_order(models: Sequence[str], seed: int) -> tuple[str, ...]:
    shuffled = list(models)
    random.Random(seed).shuffle(shuffled)
    return tuple(shuffled)


def repetition_count(orders: Orders, n_models: int, max_orders: int) -> int:
    """How many orders one judge answers for one item; refuses what it must not run."""
    if orders == "all":
        if n_models > MAX_ALL_PERMUTATIONS_MODELS:
            raise InvalidInput(
                f'orders="all" needs at most {MAX_ALL_PERMUTATIONS_MODELS} responses, '
                f"got {n_models}"
            )
        return math.factorial(n_models)
    if orders > max_orders:
        raise InvalidInput(f"orders must be at most {max_orders}, got {orders}")
    return orders


def presentations(
    models: Sequence[str],
    orders: Orders,
    *,
    salt: str,
    prompt_id: str,
    judge: str,
    first_repetition: int = 0,
    max_orders: int = 24,
) -> list[Presentation]:
    count = repetition_count(orders, len(models), max_orders)
    if orders == "all":
        perms = itertools.permutations(models)
        return [Presentation(r, tuple(p)) for r, p in enumerate(perms)]
    reps = range(first_repetition, first_repetition + count)
    return [
        Presentation(r, seeded_order(models, order_seed(salt, prompt_id, judge, r))) for r in reps
    ]
