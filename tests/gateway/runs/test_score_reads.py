"""The score task's reads of a run's judge rankings, which pick fields out of the stored
presentation in SQL (JSON paths, on both backends) instead of reading it whole."""

from __future__ import annotations

from sqlalchemy import select, update
from tests.gateway.runs.helpers import (
    Fakes,
    Sessions,
    create,
    seed_dataset,
    spec,
    work_until_settled,
)

from harmrank.gateway.db.models import Ranking
from harmrank.gateway.runs import score_inputs, score_ranks


async def test_outcomes_count_the_repaired_rankings_and_orders_become_positions(
    session_maker: Sessions,
) -> None:
    await seed_dataset(session_maker, prompts=3)
    run = await create(session_maker, spec())  # 2 models, judge-x in 2 orders: 6 rankings
    await work_until_settled(session_maker, Fakes().executors(), run.id)
    async with session_maker.begin() as session:
        first = await session.scalar(select(Ranking).order_by(Ranking.id).limit(1))
        assert first is not None
        assert first.presentation is not None
        repaired = first.presentation | {"repaired": True}
        await session.execute(
            update(Ranking).where(Ranking.id == first.id).values(presentation=repaired)
        )
    async with session_maker() as session:
        outcomes = await score_inputs._judge_outcomes(session, run.id)
        prompts = set((await session.scalars(select(Ranking.prompt_id))).all())
        ranked = await score_ranks.read_judge_ranks(
            session, run.id, ("small-a", "small-b"), prompts
        )
    assert outcomes["judge-x"] | {"abstained_because": {}} == {
        "ranked": 6,
        "repaired": 1,
        "abstained": 0,
        "failed": 0,
        "abstained_because": {},
    }
    # The fake judge shows the responses in canonical order: every model at its own position.
    shown = ranked.shown["judge-x"]
    assert shown.positions == [0, 1] * 6
    assert len(shown.ranks) == 12
    assert shown.prompts == prompts
    assert sum(len(orders) for orders in ranked.by_prompt["judge-x"].values()) == 6
