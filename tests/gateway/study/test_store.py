"""Storing a study import: every record lands in the schema, once, in one transaction."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from harmrank.common.errors import Conflict
from harmrank.gateway.db import (
    STUDY_GENERATION_KEY,
    Annotator,
    AnnotatorKind,
    Dataset,
    Exclusion,
    Model,
    Prompt,
    Ranking,
    Response,
)
from harmrank.gateway.db.engine import create_engine, session_factory, sqlite_url
from harmrank.gateway.db.migrate import upgrade_async
from harmrank.gateway.results.repository import load_rankings
from harmrank.gateway.study import StudyImport, import_study
from harmrank.gateway.study import repository as study_repository
from harmrank.gateway.study.importer import prompt_id
from harmrank.gateway.study.records import Annotation
from harmrank.gateway.study.to_dataset import StoreOutcome, store_study

# conftest's fixtures; importlib mode cannot import conftest, so the alias is repeated.
Write = Callable[..., Path]
TABLES = (Dataset, Prompt, Model, Response, Annotator, Ranking, Exclusion)
SHARED = "a shared calm ask"


@pytest.fixture
def study(tmp_path: Path, write_group: Write, write_csv: Write, write_judge: Write) -> StudyImport:
    """Two groups sharing a prompt with different responses, an expert, a judge; every quirk."""
    write_group(
        1,
        [
            ("first calm ask", "3,2,1"),
            ("second calm ask", "N/A,3,N/A"),  # not restarted after an N/A
            (SHARED, "1,N/A,2"),
            ("a tied ask", "1,1,N/A"),  # a tie: excluded
            ("a gap ask", "calm a", "", "calm c", "1,2,3"),  # an empty response: excluded
        ],
    )
    write_group(
        10,  # ranked in the opposite direction
        [
            (SHARED, "other a", "other b", "other c", "2,1,N/A"),
            ("third calm ask", "[1, 2, 3]"),
        ],
    )
    expert = [("prompt", "expert_ranking"), ("first calm ask", "1, N/A, N/A")]
    write_csv("raw_submissions/expert_annotations.csv", expert, bom=True)
    write_judge(
        "gpt4o_predictions.csv",
        [
            ("first calm ask", "1,2,3"),
            ("first calm ask", "3,2,1"),  # listed twice: the first row stands
            ("never asked", "1,2,3"),  # no group has it: excluded
        ],
    )
    return import_study(tmp_path)


async def store(session: AsyncSession, study: StudyImport, digest: str = "d1") -> StoreOutcome:
    return await store_study(session, study, dataset="tiny", source="tmp", source_sha256=digest)


async def row_counts(session: AsyncSession) -> dict[str, int]:
    return {
        t.__tablename__: (await session.scalar(select(func.count()).select_from(t))) or 0
        for t in TABLES
    }


def annotation_key(a: Annotation) -> tuple[Any, ...]:
    steps = [(n.kind, n.raw, n.normalised) for n in a.normalisations]
    return (a.annotator, a.prompt_id, a.raw_ranking, list(a.ranks), steps, f"{a.file}:{a.line}")


async def stored_rankings(session: AsyncSession) -> list[tuple[Any, ...]]:
    found = await session.execute(
        select(
            Annotator.name,
            Prompt.external_id,
            Ranking.raw_value,
            Ranking.ranks,
            Ranking.normalisations,
            Ranking.source,
        )
        .join(Ranking.annotator)
        .join(Ranking.prompt)
        .order_by(Ranking.id)
    )
    return [
        (name, pid, raw, ranks, step_tuples(steps), source)
        for name, pid, raw, ranks, steps, source in found
    ]


def step_tuples(stored: Any) -> list[tuple[str, str, str]]:
    # The column is declared list[str] (kinds) but holds each step's kind, raw and normalised.
    return [(n["kind"], n["raw"], n["normalised"]) for n in stored]


async def test_store_reports_what_it_wrote(session: AsyncSession, study: StudyImport) -> None:
    outcome = await store(session, study)
    assert outcome == StoreOutcome(
        outcome.dataset_id, False, prompts=6, responses=15, rankings=11, exclusions=3
    )
    assert await row_counts(session) == {
        "datasets": 1,
        "prompts": 6,  # the tied and the empty-response rows' prompts too
        "models": 3,
        "responses": 15,  # group 10's set for the shared prompt is not stored
        "annotators": 5,
        "rankings": 11,
        "exclusions": 3,
    }


async def test_every_annotation_round_trips(session: AsyncSession, study: StudyImport) -> None:
    """Each annotation is a ranking row, or (a judge's repeat) in the report's choices."""
    await store(session, study)
    rows = await stored_rankings(session)
    report = await session.scalar(select(Dataset.import_report))
    assert report is not None
    others = [
        (o["annotator"], c["prompt_id"], o["raw_value"], o["ranks"], steps, o["source"])
        for c in report["choices_made"]
        if c["annotator"] != "human"
        for o in c["others"]
        for steps in [step_tuples(o["normalisations"])]
    ]
    stored = [r for r in rows if r[0] != "human"] + others
    assert sorted(stored) == sorted(annotation_key(a) for a in study.annotations)
    assert len(others) == 1  # the judge's second row for the first prompt


async def test_normalisations_keep_kind_and_both_values(
    session: AsyncSession, study: StudyImport
) -> None:
    await store(session, study)
    rows = {(r[0], r[1]): r for r in await stored_rankings(session)}
    assert rows["group_1", prompt_id("second calm ask")][2:5] == (
        "N/A,3,N/A",
        [0, 1, 0],
        [("restarted_ranks", "N/A,3,N/A", "N/A,1,N/A")],
    )
    assert rows["group_10", prompt_id(SHARED)][2:5] == (
        "2,1,N/A",
        [1, 2, 0],
        [("reversed_direction", "2,1,N/A", "1,2,N/A")],
    )


async def test_human_holds_the_lowest_group_per_prompt(
    session: AsyncSession, study: StudyImport
) -> None:
    await store(session, study)
    human = [r for r in await stored_rankings(session) if r[0] == "human"]
    selected = study.selected("human").values()
    assert human == [("human", *annotation_key(a)[1:]) for a in selected]
    assert {r[1]: r[2] for r in human}[prompt_id(SHARED)] == "1,N/A,2"  # group 1, not 10


async def test_a_prompt_keeps_the_first_groups_responses(
    session: AsyncSession, study: StudyImport
) -> None:
    await store(session, study)
    found = await session.execute(
        select(Response.text, Response.generation_key, Response.source)
        .join(Response.prompt)
        .join(Response.model)
        .where(Prompt.external_id == prompt_id(SHARED))
        .order_by(Model.position)
    )
    path = "raw_submissions/output_Group_1.csv:4"
    assert found.all() == [
        ("calm a", STUDY_GENERATION_KEY, path),
        ("calm b", STUDY_GENERATION_KEY, path),
        ("calm c", STUDY_GENERATION_KEY, path),
    ]
    report = await session.scalar(select(Dataset.import_report))
    assert report is not None
    dropped = report["dropped_responses"]
    assert [(d["model"], d["group"], d["text"], d["stored"]) for d in dropped] == [
        ("mistral-7b", 10, "other a", path),
        ("mpt-7b", 10, "other b", path),
        ("stablelm-alpha-7b", 10, "other c", path),
    ]


async def test_every_exclusion_is_stored_with_reason_and_raw_value(
    session: AsyncSession, study: StudyImport
) -> None:
    await store(session, study)
    found = await session.execute(
        select(
            Exclusion.source_file,
            Exclusion.line,
            Exclusion.annotator,
            Exclusion.reason,
            Exclusion.raw_value,
        ).order_by(Exclusion.id)
    )
    expected = [(e.file, e.line, e.annotator, e.reason, e.raw_value) for e in study.exclusions]
    assert found.all() == expected
    assert {e.reason for e in study.exclusions} == {"tie", "empty_response", "unmatched_prompt"}


async def test_import_report_holds_the_counts_encodings_and_choices(
    session: AsyncSession, study: StudyImport
) -> None:
    await store(session, study)
    report = await session.scalar(select(Dataset.import_report))
    assert report is not None
    assert {k: report[k] for k in study.report()} == study.report()
    files = {f["path"]: f["encoding"] for f in report["files"]}
    assert files == {f.path: f.encoding for f in study.files}
    assert [(c["annotator"], c["rule"]) for c in report["choices_made"]] == [
        ("human", "lowest group number"),
        ("gpt4o", "first row in file order"),
    ]
    assert report["exclusion_details"] == {
        f"{e.file}:{e.line}": e.detail for e in study.exclusions if e.detail
    }


async def test_annotators_and_models(session: AsyncSession, study: StudyImport) -> None:
    await store(session, study)
    found = await session.execute(select(Annotator.name, Annotator.kind, Annotator.details))
    annotators = {name: (kind, details) for name, kind, details in found}
    assert {n: k for n, (k, _) in annotators.items()} == {
        "human": AnnotatorKind.AGGREGATE,
        "expert": AnnotatorKind.EXPERT,
        "group_1": AnnotatorKind.HUMAN,
        "group_10": AnnotatorKind.HUMAN,
        "gpt4o": AnnotatorKind.JUDGE,
    }
    assert annotators["human"][1]["rule"] == "lowest group number"
    assert annotators["gpt4o"][1]["source_file"] == "gpt4o_predictions.csv"
    assert annotators["group_10"][1]["group"] == 10
    models = await session.execute(select(Model.name, Model.position).order_by(Model.position))
    assert models.all() == [(m.id, i) for i, m in enumerate(study.models)]


async def test_storing_again_is_idempotent(
    session_maker: async_sessionmaker[AsyncSession], study: StudyImport
) -> None:
    async with session_maker() as session, session.begin():
        first = await store(session, study)
    async with session_maker() as session:
        before = await row_counts(session)
        again = await store(session, study)
        await session.commit()
        assert await row_counts(session) == before
    assert again == StoreOutcome(
        first.dataset_id,
        True,
        first.prompts,
        first.responses,
        first.rankings,
        first.exclusions,
    )


async def test_another_source_under_the_same_name_conflicts(
    session: AsyncSession, study: StudyImport
) -> None:
    await store(session, study)
    with pytest.raises(Conflict, match="digest"):
        await store(session, study, digest="d2")


async def test_another_import_of_the_same_source_conflicts(
    session: AsyncSession, study: StudyImport, tmp_path: Path, write_group: Write
) -> None:
    await store(session, study)
    write_group(2, [("a fourth calm ask", "1,2,3")])
    with pytest.raises(Conflict, match="importer changed"):
        await store(session, import_study(tmp_path))


async def test_a_second_dataset_shares_models_and_annotators(
    session: AsyncSession, study: StudyImport
) -> None:
    await store(session, study)
    other = await store_study(session, study, dataset="copy", source="tmp", source_sha256=None)
    assert not other.reused
    counts = await row_counts(session)
    assert (counts["models"], counts["annotators"], counts["prompts"]) == (3, 5, 12)


async def test_a_different_model_order_conflicts(session: AsyncSession, study: StudyImport) -> None:
    session.add(Model(name="another-7b", display_name="Another-7B", position=0))
    await session.flush()
    with pytest.raises(Conflict, match="model orders disagree"):
        await store(session, study)


async def test_a_failure_midway_leaves_nothing(
    session_maker: async_sessionmaker[AsyncSession],
    study: StudyImport,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def fail(*_: object) -> None:
        raise RuntimeError("disk full")

    # Exclusions go in last: by then every other table has rows in the transaction.
    monkeypatch.setattr(study_repository, "insert_exclusions", fail)
    async with session_maker() as session:
        with pytest.raises(RuntimeError, match="disk full"):
            async with session.begin():
                await store(session, study)
    async with session_maker() as session:
        assert set((await row_counts(session)).values()) == {0}


async def test_the_real_study_stores_whole(tmp_path: Path, paper_data: Path) -> None:
    study = import_study(paper_data)
    report = study.report()
    engine = create_engine(sqlite_url(tmp_path / "real.db"))
    try:
        await upgrade_async(engine)
        async with session_factory(engine)() as session:
            async with session.begin():
                outcome = await store(session, study)
            counts = await row_counts(session)
            per_annotator = await session.execute(
                select(Annotator.name, func.count(Ranking.id))
                .join(Ranking.annotator)
                .group_by(Annotator.name)
            )
            stored_report = await session.scalar(select(Dataset.import_report))
            loaded = await load_rankings(session, "tiny")
    finally:
        await engine.dispose()
    assert counts["prompts"] == report["prompts"]["distinct"] == outcome.prompts
    assert counts["exclusions"] == sum(report["exclusions"].values())
    assert counts["responses"] == 3 * report["prompts"]["distinct"] - _empty_response_prompts(study)
    assert dict(per_annotator.all()) == report["annotations"] | _judge_repeats(study)
    assert stored_report is not None
    assert {k: stored_report[k] for k in report} == report
    assert list(loaded) == list(study.annotators())
    for name, rankings in loaded.items():
        expected = study.rankings(name)
        assert (rankings.prompts, rankings.models) == (expected.prompts, expected.models)
        assert np.array_equal(rankings.ranks, expected.ranks), name


def _empty_response_prompts(study: StudyImport) -> int:
    """Responses missing because every row of a prompt was excluded for an empty response."""
    with_responses = {r.prompt_id for r in study.responses}
    return 3 * sum(1 for p in study.prompts if p.id not in with_responses)


def _judge_repeats(study: StudyImport) -> dict[str, int]:
    """Rankings per non-human annotator: its annotations less those a choice set aside."""
    counts = study.report()["annotations"]
    return {
        name: counts[name] - sum(len(c.others) for c in study.choices if c.annotator == name)
        for name in counts
        if name != "human"
    }
