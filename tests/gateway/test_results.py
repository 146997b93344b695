"""Reading stored results back: what was stored is what the analysis gets."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from harmrank.common.errors import NotFound
from harmrank.gateway.db import Prompt
from harmrank.gateway.results.repository import (
    DatasetSummary,
    ExcludedRow,
    dataset_summary,
    list_exclusions,
    load_rankings,
)
from harmrank.gateway.study import StudyImport, import_study
from harmrank.gateway.study.importer import prompt_id
from harmrank.gateway.study.to_dataset import store_study
from harmrank.metrics.rankings import AnnotatorRankings

GROUP_HEADER = (
    "Prompt",
    "Model 1 - Mistral-7B",
    "Model 2 - MPT-7B",
    "Model 3 - StableLM",
    "Ranking",
)
JUDGE_HEADER = ("Unnamed: 0", "preds", "extracted_pred", "prompt")


def write(path: Path, rows: Sequence[Sequence[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as out:
        csv.writer(out).writerows(rows)


def group_rows(*rows: tuple[str, str]) -> list[tuple[str, ...]]:
    return [GROUP_HEADER, *((p, "calm a", "calm b", "calm c", r) for p, r in rows)]


@pytest.fixture
def study(tmp_path: Path) -> StudyImport:
    """Made-up harmless prompts: two groups sharing one, an expert and a judge."""
    folder = tmp_path / "study"
    submissions = folder / "raw_submissions"
    write(
        submissions / "output_Group_2.csv",
        group_rows(("tea ask", "3,2,1"), ("walk ask", "N/A,3,N/A"), ("tie ask", "1,1,N/A")),
    )
    write(
        submissions / "output_Group_10.csv",
        group_rows(("tea ask", "2,1,N/A"), ("nap ask", "1,2,3")),
    )
    write(
        submissions / "expert_annotations.csv",
        [("prompt", "expert_ranking"), ("tea ask", "1,N/A,N/A")],
    )
    judged = [("0", "answer", "1,2,3", "tea ask"), ("1", "answer", "1,2,3", "unknown ask")]
    write(folder / "gpt4o_predictions.csv", [JUDGE_HEADER, *judged])
    return import_study(folder)


@pytest.fixture
async def stored(session: AsyncSession, study: StudyImport) -> StudyImport:
    await store_study(session, study, dataset="tiny", source="tmp", source_sha256="d")
    await session.commit()
    return study


def assert_same(got: AnnotatorRankings, expected: AnnotatorRankings) -> None:
    # The dataclass holds a numpy array, so == would not give one bool.
    assert (got.annotator, got.models, got.prompts) == (
        expected.annotator,
        expected.models,
        expected.prompts,
    )
    assert np.array_equal(got.ranks, expected.ranks)
    assert got.ranks.dtype == expected.ranks.dtype
    assert got.categories == expected.categories


async def test_load_rankings_gives_back_the_imports_rankings(
    session: AsyncSession, stored: StudyImport
) -> None:
    loaded = await load_rankings(session, "tiny")
    assert list(loaded) == list(stored.annotators())
    for name, rankings in loaded.items():
        assert_same(rankings, stored.rankings(name))


async def test_load_rankings_of_some_annotators_in_the_order_asked(
    session: AsyncSession, stored: StudyImport
) -> None:
    loaded = await load_rankings(session, "tiny", ["gpt4o", "group_10"])
    assert list(loaded) == ["gpt4o", "group_10"]
    assert_same(loaded["group_10"], stored.rankings("group_10"))


async def test_load_rankings_of_an_annotator_without_rankings(
    session: AsyncSession, stored: StudyImport
) -> None:
    with pytest.raises(NotFound, match="nobody"):
        await load_rankings(session, "tiny", ["expert", "nobody"])


async def test_load_rankings_carries_categories_when_present(
    session: AsyncSession, stored: StudyImport
) -> None:
    tea = prompt_id("tea ask")
    await session.execute(update(Prompt).where(Prompt.external_id == tea).values(category="food"))
    loaded = (await load_rankings(session, "tiny", ["human"]))["human"]
    assert loaded.categories == tuple("food" if p == tea else None for p in loaded.prompts)


async def test_dataset_summary(session: AsyncSession, stored: StudyImport) -> None:
    summary = await dataset_summary(session, "tiny")
    assert summary == DatasetSummary(
        "tiny",
        "tmp",
        "d",
        prompts=4,
        responses=12,  # not group 10's set for "tea ask": one per model and prompt
        rankings={"human": 3, "expert": 1, "group_2": 2, "group_10": 2, "gpt4o": 1},
        exclusions={"tie": 1, "unmatched_prompt": 1},
    )
    annotations = stored.report()["annotations"]
    assert summary.rankings == annotations


async def test_list_exclusions_gives_every_one_with_its_detail(
    session: AsyncSession, stored: StudyImport
) -> None:
    expected = [
        ExcludedRow(e.file, e.line, e.annotator, e.reason, e.raw_value, e.detail)
        for e in sorted(stored.exclusions, key=lambda e: (e.file, e.line))
    ]
    assert await list_exclusions(session, "tiny") == expected
    assert all(row.detail for row in expected)


async def test_unknown_dataset(session: AsyncSession, stored: StudyImport) -> None:
    with pytest.raises(NotFound, match="'other'"):
        await load_rankings(session, "other")
    with pytest.raises(NotFound, match="'other'"):
        await dataset_summary(session, "other")
    with pytest.raises(NotFound, match="'other'"):
        await list_exclusions(session, "other")
