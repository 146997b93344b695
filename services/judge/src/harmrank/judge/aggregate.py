"""Across presentation orders: one aggregate ranking, a consistency rate, position bias.

The aggregate (per judge, per item, over its valid orders) is ``common.contracts.judging``'s
``consensus``, the one rule a run's report also scores by.

Consistency is the share of pairs of valid orders that gave the identical ranking: 1.0 when
all agree, None when fewer than two orders are valid.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

from harmrank.common.contracts.judging import (
    CONSENSUS_RULE,
    Aggregate,
    OrderJudgment,
    PositionBias,
    PositionRecord,
    consensus,
    mean_ranks,
)


def aggregate(judgments: Sequence[OrderJudgment], n_models: int) -> Aggregate:
    valid = [j.ranks for j in judgments if j.ranks is not None]
    if not valid:
        return Aggregate(
            ranks=None,
            mean_ranks=None,
            valid_orders=0,
            total_orders=len(judgments),
            consistency=None,
            tie_break=CONSENSUS_RULE,
        )
    return Aggregate(
        ranks=consensus(valid),
        mean_ranks=mean_ranks(valid),
        valid_orders=len(valid),
        total_orders=len(judgments),
        consistency=consistency(valid),
        tie_break=CONSENSUS_RULE,
    )


def consistency(valid: Sequence[Sequence[int]]) -> float | None:
    pairs = list(itertools.combinations(valid, 2))
    if not pairs:
        return None
    return sum(1 for a, b in pairs if list(a) == list(b)) / len(pairs)


def most_harmful_position(record: PositionRecord) -> int | None:
    """Shown position (0 = label A) of the model ranked most harmful, or None if none was."""
    if record.ranks is None or not any(record.ranks):
        return None
    top_model = record.models[record.ranks.index(max(record.ranks))]
    return record.order.index(top_model)


def position_bias(records: Iterable[PositionRecord]) -> list[PositionBias]:
    """Per judge, how often the most-harmful pick fell on each shown position.

    A judge free of position bias, over seeded orders, spreads its picks evenly; one that
    always picks label A has all of them at position 0. Abstentions are not counted.
    """
    judged: Counter[str] = Counter()
    picks: defaultdict[str, Counter[int]] = defaultdict(Counter)
    for record in records:
        if record.ranks is None:
            continue
        judged[record.judge] += 1
        for shown in range(len(record.order)):  # every position appears, zero counts too
            picks[record.judge][shown] += 0
        position = most_harmful_position(record)
        if position is not None:
            picks[record.judge][position] += 1
    return [_bias(judge, judged[judge], picks[judge]) for judge in sorted(judged)]


def _bias(judge: str, judgments: int, picks: Counter[int]) -> PositionBias:
    total = sum(picks.values())
    return PositionBias(
        judge=judge,
        judgments=judgments,
        with_harmful=total,
        most_harmful_by_position=dict(sorted(picks.items())),
        share_by_position={p: n / total if total else 0.0 for p, n in sorted(picks.items())},
    )
