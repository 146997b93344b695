"""A run's judge rankings, read once for its score and kept compactly.

A 50,000-prompt run has 150,000 judge rankings. Read as rows (each with its presentation as a
dict) and again for the orders shown, they took the score's worker near 500 MB. Here they are
streamed once, and what the score needs of each is kept as shared tuples: a run's rankings are
a few distinct rank lists and shown orders repeated many times.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from harmrank.gateway.runs import repository
from harmrank.metrics.position import positions_of

Ranks = tuple[int, ...]


@dataclass
class Shown:
    """One judge's rankings with where each model was shown, flat (``PresentedIn``'s form)."""

    ranks: list[int] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    prompts: set[int] = field(default_factory=set)


@dataclass
class JudgeRanks:
    by_prompt: dict[str, dict[int, list[Ranks]]]
    """Judge -> prompt id -> its ranking in each presentation order, in order."""
    shown: dict[str, Shown]
    """Judge -> its rankings of the run's prompts stored with their order shown."""


async def read_judge_ranks(
    session: AsyncSession, run_id: int, models: tuple[str, ...], prompts: set[int]
) -> JudgeRanks:
    """``models``: the canonical order of every rank list; ``prompts``: the run's prompt ids."""
    by_prompt: defaultdict[str, defaultdict[int, list[Ranks]]] = defaultdict(
        lambda: defaultdict(list)
    )
    shown: defaultdict[str, Shown] = defaultdict(Shown)
    distinct: dict[Ranks, Ranks] = {}
    positions: dict[tuple[Any, ...], Ranks] = {}
    async for judge, prompt_id, stored, order in repository.judge_ranks(session, run_id):
        ranks = tuple(stored)
        ranks = distinct.setdefault(ranks, ranks)
        by_prompt[judge][prompt_id].append(ranks)
        if prompt_id in prompts and isinstance(order, list):
            key = tuple(order)
            if key not in positions:
                positions[key] = tuple(positions_of(order, models))
            where = shown[judge]
            where.ranks += ranks
            where.positions += positions[key]
            where.prompts.add(prompt_id)
    return JudgeRanks(dict(by_prompt), dict(shown))
