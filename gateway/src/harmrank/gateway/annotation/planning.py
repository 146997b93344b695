"""Who ranks what, and in which order: pure functions, no I/O.

Assignment: every item goes to ``k`` distinct annotators (all of them when there are fewer),
and the annotators' loads differ by at most one. Rankings already made are fixed; everything
still pending is a plan, recomputed whenever its inputs change (an invitation, k, a skip).
The plan is greedy and deterministic: items in order, each to the least-loaded annotators who
do not have it yet and did not skip it, ties broken by a rotation so that the same annotators
are not always first. From equal loads this keeps every load within one of the others: when
fewer than ``need`` annotators are at the minimum, all of them move up, so the minimum rises.

Order: each annotator sees their items, and each item's responses, in an order seeded by
their invitation's seed, so it is random across annotators and stable across reloads.
"""

from __future__ import annotations

import hashlib
import random
import string
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field

LABELS = string.ascii_uppercase


@dataclass(frozen=True)
class PlanInput:
    items: Sequence[int]
    """Item ids (prompt ids) in a stable order."""
    annotators: Sequence[int]
    """Active annotator (invitation) ids in a stable order."""
    k: int
    fixed: Mapping[int, Set[int]] = field(default_factory=dict)
    """Per item, the annotators who ranked it already (they count towards k)."""
    excluded: Mapping[int, Set[int]] = field(default_factory=dict)
    """Per item, annotators who must not get it (they skipped it)."""


def plan(spec: PlanInput) -> dict[int, list[int]]:
    """The new assignments: per annotator, the items to add, in item order."""
    n = len(spec.annotators)
    loads = dict.fromkeys(spec.annotators, 0)
    for holders in spec.fixed.values():
        for a in holders:
            if a in loads:
                loads[a] += 1
    place = {a: i for i, a in enumerate(spec.annotators)}
    out: dict[int, list[int]] = {a: [] for a in spec.annotators}
    for index, item in enumerate(spec.items):
        have = spec.fixed.get(item, set())
        need = spec.k - len(have)
        blocked = have | spec.excluded.get(item, set())
        candidates = [a for a in spec.annotators if a not in blocked]
        candidates.sort(key=lambda a: (loads[a], (place[a] - index) % n))
        for a in candidates[: max(need, 0)]:
            loads[a] += 1
            out[a].append(item)
    return out


def _digest(seed: int, item: int, purpose: str) -> bytes:
    return hashlib.sha256(f"{purpose}:{seed}:{item}".encode()).digest()


def queue_position(seed: int, item: int) -> int:
    """Where the item comes in the annotator's queue (compared with their other items)."""
    return int.from_bytes(_digest(seed, item, "queue")[:4], "big") >> 1


def presentation_order(seed: int, item: int, n_models: int) -> list[int]:
    """The canonical model indices in the order the annotator is shown them."""
    order = list(range(n_models))
    random.Random(_digest(seed, item, "responses")).shuffle(order)
    return order


def labels(n: int) -> list[str]:
    """Neutral labels A, B, C… (AA, AB… past 26)."""
    if n <= len(LABELS):
        return list(LABELS[:n])
    return [LABELS[i // 26 - 1] + LABELS[i % 26] if i >= 26 else LABELS[i] for i in range(n)]


def ranks_from_labels(
    by_label: Mapping[str, int], order: Sequence[int], shown: Sequence[str]
) -> list[int] | None:
    """Ranks in canonical model order from ranks by label; None if the labels do not match."""
    if set(by_label) != set(shown):
        return None
    ranks = [0] * len(order)
    for label, model_index in zip(shown, order, strict=True):
        ranks[model_index] = by_label[label]
    return ranks
