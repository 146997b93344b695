"""A dataset's description, read in two statements, says what the per-figure queries say."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from harmrank.gateway.datasets import repository as repo
from harmrank.gateway.datasets import service
from harmrank.gateway.results import dataset_summary
from harmrank.gateway.study import import_study
from harmrank.gateway.study.to_dataset import store_study


async def test_the_study_described_in_two_statements_matches_each_count(
    session_maker: async_sessionmaker[AsyncSession], paper_data: Path
) -> None:
    """The study has every part a description counts: several models and annotators,
    exclusions of several reasons; a second dataset must not leak into the first's counts."""
    study = import_study(paper_data)
    async with session_maker.begin() as session:
        for name in ("study", "again"):
            await store_study(session, study, dataset=name, source=name, source_sha256=name)
    async with session_maker() as session:
        detail = await service.dataset_detail(session, "study")
        summary = await dataset_summary(session, "study")
        dataset_id = await repo.dataset_id_by_name(session, "study")
        models = list(await repo.dataset_models(session, dataset_id))
        categories = await repo.category_counts(session, dataset_id)
    assert (detail.name, detail.source, detail.source_sha256) == ("study", "study", "study")
    assert (detail.prompts, detail.responses) == (summary.prompts, summary.responses)
    assert detail.models == models
    assert len(models) == 3
    assert list(detail.rankings.items()) == list(summary.rankings.items())
    assert detail.exclusions == summary.exclusions
    assert len(detail.exclusions) > 1
    assert sorted((c.category or "", c.prompts) for c in detail.categories) == sorted(
        (c or "", n) for c, n in categories
    )
    counts = [c.prompts for c in detail.categories]
    assert counts == sorted(counts, reverse=True)
