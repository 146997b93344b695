"""A hand-made dataset for the explorer, the gateway app serving it, and a run over part of it.

Three models (m0, m1, m2); humans h1 and h2; judge gpt4o asked in two presentation orders
(columns ``gpt4o #1`` and ``gpt4o #2``) and claude in one. Ranks are in model order (0 = N/A,
the highest number the most harmful). What each filter must return is worked out by hand in
the test files from this table:

    prompt  category  h1       h2       gpt4o #1  gpt4o #2  claude
    p1      hate      1,2,0    1,2,0    1,2,0     1,2,0     1,2,0
    p2      violence  1,2,0    2,1,0    1,2,0     2,1,0     1,2,0
    p3      hate      0,0,1    0,0,1    0,0,0     0,0,0     0,0,1
    p4      -         3,2,1    3,2,1    1,2,3     1,2,3     2,3,1
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.middleware import Middleware
from starlette.types import ASGIApp

# The annotation page's fixture, for the browser tests here: Debian's chromium via Playwright.
from tests.gateway.annotation.test_browser import browser  # noqa: F401

from harmrank.gateway.auth import TokenMiddleware
from harmrank.gateway.db import Annotator, AnnotatorKind, Dataset, Model, Prompt, Ranking, Response
from harmrank.gateway.db.run_models import Run, RunPrompt, RunReport, Stage, Task, TaskState
from harmrank.gateway.explore.standalone import create_explorer_app

Sessions = async_sessionmaker[AsyncSession]
MODELS = ("m0", "m1", "m2")
KINDS = {"h1": "human", "h2": "human", "gpt4o": "judge", "claude": "judge"}


@dataclass
class Sample:
    id: str
    text: str
    category: str | None
    responses: Sequence[str]
    ranks: dict[str, Sequence[int]]
    """Column → ranks; ``gpt4o #1`` and ``gpt4o #2`` are gpt4o's two orders."""
    raw: dict[str, str] = field(default_factory=dict)


def samples() -> list[Sample]:
    def row(h1: str, h2: str, g1: str, g2: str, c: str) -> dict[str, Sequence[int]]:
        cols = ("h1", "h2", "gpt4o #1", "gpt4o #2", "claude")
        return {
            k: [int(x) for x in v.split(",")]
            for k, v in zip(cols, (h1, h2, g1, g2, c), strict=True)
        }

    return [
        Sample("p1", "Alpha question", "hate", ("a0", "a1", "a2"),
               row("1,2,0", "1,2,0", "1,2,0", "1,2,0", "1,2,0")),
        Sample("p2", "Bravo question", "violence", ("b0", "b1", "b2"),
               row("1,2,0", "2,1,0", "1,2,0", "2,1,0", "1,2,0")),
        Sample("p3", "Charlie question SEARCH-me", "hate", ("=HYPERLINK(1)", "c1", "c2"),
               row("0,0,1", "0,0,1", "0,0,0", "0,0,0", "0,0,1")),
        Sample("p4", "Delta question", None, ("d0", "d1", "d2"),
               row("3,2,1", "3,2,1", "1,2,3", "1,2,3", "2,3,1")),
    ]  # fmt: skip


def _annotator_and_order(column: str) -> tuple[str, int | None]:
    name, _, order = column.partition(" #")
    return name, int(order) - 1 if order else None


async def seed(
    sessions: Sessions,
    items: Sequence[Sample],
    *,
    dataset: str = "hand",
    models: Sequence[str] = MODELS,
    kinds: dict[str, str] | None = None,
) -> dict[str, int]:
    """Store the samples as a dataset; answers the prompts' database ids by external id."""
    kinds = kinds or KINDS
    async with sessions() as session:
        data = Dataset(name=dataset, source="hand-made")
        stored_models = [
            Model(name=m, display_name=f"{m} display", position=i) for i, m in enumerate(models)
        ]
        annotators = {n: Annotator(name=n, kind=AnnotatorKind(k)) for n, k in kinds.items()}
        session.add_all([data, *stored_models, *annotators.values()])
        await session.flush()
        ids = {}
        for sample in items:
            prompt = Prompt(
                dataset_id=data.id,
                external_id=sample.id,
                text=sample.text,
                normalised_text=sample.text.lower(),
                category=sample.category,
            )
            session.add(prompt)
            await session.flush()
            ids[sample.id] = prompt.id
            _add_rows(session, prompt.id, sample, stored_models, annotators)
        await session.commit()
    return ids


def _add_rows(
    session: AsyncSession,
    prompt_id: int,
    sample: Sample,
    models: Sequence[Model],
    annotators: dict[str, Annotator],
) -> None:
    for model, text in zip(models, sample.responses, strict=True):
        session.add(
            Response(prompt_id=prompt_id, model_id=model.id, text=text, generation_key="g",
                     source="hand")
        )  # fmt: skip
    for column, ranks in sample.ranks.items():
        name, order = _annotator_and_order(column)
        session.add(
            Ranking(
                annotator_id=annotators[name].id,
                prompt_id=prompt_id,
                ranks=list(ranks),
                raw_value=sample.raw.get(column, ",".join(map(str, ranks))),
                # As the study's importer records them: objects naming the kind of change.
                normalisations=[{"kind": f"read {sample.raw[column]}"}]
                if column in sample.raw
                else [],
                source="hand",
                presentation=None if order is None else {"repetition": order, "repaired": False},
                presentation_key="" if order is None else f"key-{name}-{order}",
            )
        )


JUDGE_ORDERS = (("gpt4o", 0), ("gpt4o", 1), ("claude", None))


async def add_run(
    sessions: Sessions,
    dataset: str,
    prompt_ids: Sequence[int],
    *,
    judges: Sequence[tuple[str, int | None]] = JUDGE_ORDERS,
    humans: Sequence[str] = ("h1",),
    abstention: str = "refused: the model declined",
) -> int:
    """A run over the prompts (in that order) with the judges' orders, and judge llama that
    abstained on the first prompt; its report included the given humans."""
    async with sessions() as session:
        data = await session.scalar(select(Dataset.id).where(Dataset.name == dataset))
        assert data is not None
        run = Run(dataset_id=data, spec={})
        session.add(run)
        await session.flush()
        session.add_all(
            [RunPrompt(run_id=run.id, prompt_id=p, position=i) for i, p in enumerate(prompt_ids)]
        )
        report = {"run": {"humans": {"included": list(humans)}}}
        session.add(RunReport(run_id=run.id, report=report))
        tasks = await _run_tasks(session, run.id, prompt_ids, judges)
        llama = Annotator(name="llama", kind=AnnotatorKind.JUDGE)
        session.add(llama)
        await session.flush()
        tasks.append(
            _task(run.id, "j:llama", Stage.JUDGE, prompt_ids[0], annotator_id=llama.id,
                  presentation_key="k-llama", order_index=0, state=TaskState.FAILED,
                  error_type="judge_abstained", error_message=abstention)
        )  # fmt: skip
        session.add_all(tasks)
        await session.commit()
        return run.id


async def _run_tasks(
    session: AsyncSession,
    run_id: int,
    prompt_ids: Sequence[int],
    judges: Sequence[tuple[str, int | None]],
) -> list[Task]:
    models = list(await session.scalars(select(Model).order_by(Model.position)))
    annotators = {a.name: a for a in await session.scalars(select(Annotator))}
    tasks = []
    for prompt in prompt_ids:
        for model in models:
            tasks.append(_task(run_id, f"g:{prompt}:{model.id}", Stage.GENERATE, prompt,
                               model_id=model.id, generation_key="g",
                               result={"server": {"model_id": f"org/{model.name}"},
                                       "params": {"max_new_tokens": 64}}))  # fmt: skip
        for name, order in judges:
            key = f"key-{name}-{order}" if order is not None else ""
            tasks.append(_task(run_id, f"j:{prompt}:{name}:{order}", Stage.JUDGE, prompt,
                               annotator_id=annotators[name].id, presentation_key=key,
                               order_index=order or 0))  # fmt: skip
    return tasks


def _task(run_id: int, key: str, stage: Stage, prompt_id: int, **fields: Any) -> Task:
    fields.setdefault("state", TaskState.DONE)
    return Task(run_id=run_id, key=key, stage=stage, prompt_id=prompt_id, max_attempts=3,
                **fields)  # fmt: skip


def make_app(db_url: str, read_tokens: Sequence[str] = ()) -> FastAPI:
    """The explorer alone (as ``harmrank explore`` serves it), reads needing a token if given."""
    tokens = [SecretStr(t) for t in read_tokens]
    auth = Middleware(TokenMiddleware, read_tokens=tokens, require_token_for_reads=bool(tokens))
    return create_explorer_app(db_url, middleware=[auth])


@pytest.fixture
def base_url(serve_app: Callable[[ASGIApp], str], db_url: str, migrated_engine: AsyncEngine) -> str:
    return serve_app(make_app(db_url))


@pytest.fixture
async def client(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        yield client
