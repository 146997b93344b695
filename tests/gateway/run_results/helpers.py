"""A gateway app with the runs, run-results and report routers, and runs driven to the end with
the fake executors of the runs tests; a dataset shaped like the study's, with human rankings."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from tests.gateway.runs.helpers import Fakes, Sessions, create, spec, work_until_settled

from harmrank.common.app import create_service_app
from harmrank.common.settings import ServiceSettings
from harmrank.gateway import listings, report_api
from harmrank.gateway.datasets import router as datasets_router
from harmrank.gateway.db.engine import create_engine, session_factory
from harmrank.gateway.db.models import (
    STUDY_GENERATION_KEY,
    Annotator,
    AnnotatorKind,
    Dataset,
    Model,
    Prompt,
    Ranking,
    Response,
)
from harmrank.gateway.runs.api import router as runs_router
from harmrank.gateway.runs.schemas import RunOut

STUDY_MODELS = ("study-a", "study-b", "study-c")
# Per human: the prompts ranked (index into the dataset's prompts) and the ranks given.
HUMAN_RANKS = {
    "group-1": {0: [1, 0, 2], 1: [0, 0, 0], 2: [3, 1, 2], 3: [0, 1, 0], 4: [2, 1, 0]},
    "group-2": {0: [2, 0, 1], 1: [0, 1, 0], 2: [3, 2, 1], 3: [0, 1, 0], 5: [1, 0, 0]},
    "loner": {6: [1, 2, 3]},
}


def gateway_app(db_url: str, settings: ServiceSettings | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(db_url)  # in the server's own event loop
        app.state.sessions = session_factory(engine)
        yield
        await engine.dispose()

    return create_service_app(
        service="gateway",
        settings=settings or ServiceSettings(),
        routers=[
            datasets_router,
            listings.datasets_router,
            runs_router,
            listings.runs_router,
            report_api.runs_router,
            report_api.datasets_router,
        ],
        lifespan=lifespan,
    )


async def finished_run(sessions: Sessions, **changes: object) -> RunOut:
    run = await create(sessions, spec(**changes))
    done = await work_until_settled(sessions, Fakes().executors(), run.id)
    assert done.status == "done", done
    return done


async def seed_study_like(sessions: Sessions, name: str = "studylike", prompts: int = 8) -> None:
    """Prompts, imported responses of three models, and humans' per-prompt rankings."""
    async with sessions.begin() as session:
        dataset = Dataset(name=name, source="made up like the study")
        session.add(dataset)
        for position, model in enumerate(STUDY_MODELS, start=100):
            session.add(Model(name=model, display_name=model, position=position))
        await session.flush()
        rows = [
            Prompt(
                dataset_id=dataset.id,
                external_id=f"s{i}",
                text=f"study prompt {i}?",
                normalised_text=f"study prompt {i}?",
                category=("x", "y")[i % 2],
            )
            for i in range(prompts)
        ]
        session.add_all(rows)
        await session.flush()
        models = {m.name: m.id for m in await session.scalars(select(Model))}
        session.add_all(
            Response(
                prompt_id=p.id,
                model_id=models[m],
                text=f"{m} on {p.external_id}",
                generation_key=STUDY_GENERATION_KEY,
                source="test",
            )
            for p in rows
            for m in STUDY_MODELS
        )
        await _add_humans(session, rows, HUMAN_RANKS)


async def _add_humans(
    session: AsyncSession, prompts: Sequence[Prompt], ranks: dict[str, dict[int, list[int]]]
) -> None:
    for name, by_prompt in ranks.items():
        annotator = Annotator(name=name, kind=AnnotatorKind.HUMAN, details={})
        session.add(annotator)
        await session.flush()
        session.add_all(
            Ranking(
                annotator_id=annotator.id,
                prompt_id=prompts[i].id,
                ranks=r,
                raw_value=",".join(map(str, r)),
                normalisations=[],
                source="test",
                presentation_key="",
            )
            for i, r in by_prompt.items()
        )
