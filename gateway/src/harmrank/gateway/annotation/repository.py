"""Every query behind the annotation page and its admin endpoints. Writes only flush."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from harmrank.gateway.db.annotation_models import (
    AnnotationAssignment,
    AnnotationConfig,
    AnnotationDraw,
    AnnotationFlag,
    AnnotationInvitation,
    AnnotationSession,
    AssignmentState,
    FlagKind,
)
from harmrank.gateway.db.engine import rowcount
from harmrank.gateway.db.models import (
    Annotator,
    AnnotatorKind,
    Dataset,
    Prompt,
    Ranking,
    Response,
)


@dataclass(frozen=True)
class AssignmentRow:
    invitation_id: int
    prompt_id: int
    state: AssignmentState


@dataclass(frozen=True)
class ProgressRow:
    invitation_id: int
    prompt_id: int
    external_id: str
    state: AssignmentState
    seconds: float | None
    flags: int


# --- settings -------------------------------------------------------------------------------


async def config(
    session: AsyncSession, dataset_id: int, *, lock: bool = False
) -> AnnotationConfig | None:
    """The dataset's settings; ``lock`` takes the row lock that serialises assignment changes."""
    query = select(AnnotationConfig).where(AnnotationConfig.dataset_id == dataset_id)
    if lock:
        query = query.with_for_update()
    return await session.scalar(query)


async def dataset_name(session: AsyncSession, dataset_id: int) -> str:
    found = await session.scalar(select(Dataset.name).where(Dataset.id == dataset_id))
    assert found is not None  # invitations cascade with their dataset
    return found


async def add(session: AsyncSession, row: Any) -> None:
    session.add(row)
    await session.flush()


# --- items ----------------------------------------------------------------------------------


async def complete_items(
    session: AsyncSession, dataset_id: int, model_ids: Sequence[int]
) -> list[int]:
    """Prompt ids (in id order) with a response of every one of the dataset's models."""
    found = await session.scalars(
        select(Response.prompt_id)
        .join(Response.prompt)
        .where(Prompt.dataset_id == dataset_id, Response.model_id.in_(model_ids))
        .group_by(Response.prompt_id)
        .having(func.count(func.distinct(Response.model_id)) == len(model_ids))
        .order_by(Response.prompt_id)
    )
    return list(found)


async def prompt(session: AsyncSession, prompt_id: int) -> Prompt:
    found = await session.get(Prompt, prompt_id)
    assert found is not None  # assignments cascade with their prompt
    return found


async def prompt_by_external_id(
    session: AsyncSession, dataset_id: int, external_id: str
) -> int | None:
    return await session.scalar(
        select(Prompt.id).where(Prompt.dataset_id == dataset_id, Prompt.external_id == external_id)
    )


async def latest_responses(
    session: AsyncSession, prompt_id: int, model_ids: Sequence[int]
) -> dict[int, str]:
    """The newest response of each model to the prompt (a prompt may be generated again)."""
    found = await session.execute(
        select(Response.model_id, Response.text)
        .where(Response.prompt_id == prompt_id, Response.model_id.in_(model_ids))
        .order_by(Response.id)
    )
    return dict(found.all())


async def judge_rankings(
    session: AsyncSession, dataset_id: int
) -> dict[int, dict[str, list[list[int]]]]:
    """Per prompt of the dataset, each judge's rankings (one per presentation order)."""
    found = await session.execute(
        select(Ranking.prompt_id, Annotator.name, Ranking.ranks)
        .join(Annotator, Annotator.id == Ranking.annotator_id)
        .join(Prompt, Prompt.id == Ranking.prompt_id)
        .where(Prompt.dataset_id == dataset_id, Annotator.kind == AnnotatorKind.JUDGE)
        .order_by(Ranking.id)
    )
    out: dict[int, dict[str, list[list[int]]]] = {}
    for prompt_id, judge, ranks in found.all():
        out.setdefault(prompt_id, {}).setdefault(judge, []).append(list(ranks))
    return out


# --- draws under a label budget -------------------------------------------------------------


async def draws(session: AsyncSession, dataset_id: int) -> list[AnnotationDraw]:
    found = await session.scalars(
        select(AnnotationDraw)
        .where(AnnotationDraw.dataset_id == dataset_id)
        .order_by(AnnotationDraw.prompt_id)
    )
    return list(found)


async def draws_by_external_id(
    session: AsyncSession, dataset_id: int
) -> list[tuple[str, float, bool]]:
    """(prompt external id, probability, drawn) of every draw of the dataset."""
    found = await session.execute(
        select(Prompt.external_id, AnnotationDraw.probability, AnnotationDraw.selected)
        .join(Prompt, Prompt.id == AnnotationDraw.prompt_id)
        .where(AnnotationDraw.dataset_id == dataset_id)
    )
    return [(e, float(p), bool(s)) for e, p, s in found.all()]


async def delete_draws(session: AsyncSession, dataset_id: int) -> None:
    await session.execute(delete(AnnotationDraw).where(AnnotationDraw.dataset_id == dataset_id))


async def insert_draws(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await session.execute(insert(AnnotationDraw), rows)


async def done_count(session: AsyncSession, dataset_id: int) -> int:
    found = await session.scalar(
        select(func.count()).where(
            AnnotationAssignment.dataset_id == dataset_id,
            AnnotationAssignment.state == AssignmentState.DONE,
        )
    )
    return int(found or 0)


# --- invitations and sessions ---------------------------------------------------------------


async def invitations(session: AsyncSession, dataset_id: int) -> list[AnnotationInvitation]:
    found = await session.scalars(
        select(AnnotationInvitation)
        .where(AnnotationInvitation.dataset_id == dataset_id)
        .order_by(AnnotationInvitation.id)
    )
    return list(found)


async def invitation_by_digest(session: AsyncSession, digest: str) -> AnnotationInvitation | None:
    return await session.scalar(
        select(AnnotationInvitation).where(AnnotationInvitation.token_sha256 == digest)
    )


async def session_by_digest(
    session: AsyncSession, digest: str
) -> tuple[AnnotationSession, AnnotationInvitation] | None:
    found = await session.execute(
        select(AnnotationSession, AnnotationInvitation)
        .join(AnnotationInvitation, AnnotationSession.invitation_id == AnnotationInvitation.id)
        .where(AnnotationSession.token_sha256 == digest)
    )
    row = found.first()
    return (row[0], row[1]) if row is not None else None


async def delete_sessions(session: AsyncSession, invitation_id: int) -> None:
    await session.execute(
        delete(AnnotationSession).where(AnnotationSession.invitation_id == invitation_id)
    )


async def delete_session(session: AsyncSession, session_id: int) -> None:
    await session.execute(delete(AnnotationSession).where(AnnotationSession.id == session_id))


async def annotator_named(session: AsyncSession, name: str) -> Annotator | None:
    return await session.scalar(select(Annotator).where(Annotator.name == name))


async def annotator_names(session: AsyncSession, ids: Sequence[int]) -> dict[int, str]:
    found = await session.execute(select(Annotator.id, Annotator.name).where(Annotator.id.in_(ids)))
    return dict(found.all())


async def new_annotator(session: AsyncSession, name: str, details: dict[str, Any]) -> Annotator:
    row = Annotator(name=name, kind=AnnotatorKind.HUMAN, details=details)
    await add(session, row)
    return row


async def invitation_of(
    session: AsyncSession, dataset_id: int, annotator_id: int
) -> AnnotationInvitation | None:
    return await session.scalar(
        select(AnnotationInvitation).where(
            AnnotationInvitation.dataset_id == dataset_id,
            AnnotationInvitation.annotator_id == annotator_id,
        )
    )


async def annotators_invited(session: AsyncSession, dataset_id: int) -> list[str]:
    """Names of the annotators bound to the dataset's invitations, in invitation order."""
    found = await session.scalars(
        select(Annotator.name)
        .join(AnnotationInvitation, AnnotationInvitation.annotator_id == Annotator.id)
        .where(AnnotationInvitation.dataset_id == dataset_id)
        .order_by(AnnotationInvitation.id)
    )
    return list(found)


# --- assignments ----------------------------------------------------------------------------


async def assignments(session: AsyncSession, dataset_id: int) -> list[AssignmentRow]:
    found = await session.execute(
        select(
            AnnotationAssignment.invitation_id,
            AnnotationAssignment.prompt_id,
            AnnotationAssignment.state,
        ).where(AnnotationAssignment.dataset_id == dataset_id)
    )
    return [AssignmentRow(i, p, AssignmentState(s)) for i, p, s in found.all()]


async def delete_pending(session: AsyncSession, dataset_id: int) -> None:
    await session.execute(
        delete(AnnotationAssignment).where(
            AnnotationAssignment.dataset_id == dataset_id,
            AnnotationAssignment.state == AssignmentState.PENDING,
        )
    )


async def insert_assignments(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    if rows:  # an executemany with no parameters is an error, not a no-op
        await session.execute(insert(AnnotationAssignment), rows)


async def next_assignment(session: AsyncSession, invitation_id: int) -> AnnotationAssignment | None:
    return await session.scalar(
        select(AnnotationAssignment)
        .where(
            AnnotationAssignment.invitation_id == invitation_id,
            AnnotationAssignment.state == AssignmentState.PENDING,
        )
        .order_by(AnnotationAssignment.position, AnnotationAssignment.id)
        .limit(1)
    )


async def assignment(
    session: AsyncSession, invitation_id: int, prompt_id: int
) -> AnnotationAssignment | None:
    return await session.scalar(
        select(AnnotationAssignment).where(
            AnnotationAssignment.invitation_id == invitation_id,
            AnnotationAssignment.prompt_id == prompt_id,
        )
    )


async def state_counts(session: AsyncSession, invitation_id: int) -> dict[AssignmentState, int]:
    found = await session.execute(
        select(AnnotationAssignment.state, func.count())
        .where(AnnotationAssignment.invitation_id == invitation_id)
        .group_by(AnnotationAssignment.state)
    )
    return {AssignmentState(s): n for s, n in found.all()}


async def finish(
    session: AsyncSession,
    assignment_id: int,
    state: AssignmentState,
    *,
    at: datetime,
    seconds: float | None = None,
    ranking_id: int | None = None,
) -> bool:
    """Move a pending assignment to done or skipped; False when it was no longer pending."""
    done = await session.execute(
        update(AnnotationAssignment)
        .where(
            AnnotationAssignment.id == assignment_id,
            AnnotationAssignment.state == AssignmentState.PENDING,
        )
        .values(state=state, finished_at=at, seconds=seconds, ranking_id=ranking_id)
    )
    return rowcount(done) > 0


async def add_flag(session: AsyncSession, assignment_id: int, kind: FlagKind, note: str) -> None:
    await add(session, AnnotationFlag(assignment_id=assignment_id, kind=kind, note=note))


async def ranking_exists(session: AsyncSession, annotator_id: int, prompt_id: int) -> bool:
    found = await session.scalar(
        select(Ranking.id).where(
            Ranking.annotator_id == annotator_id,
            Ranking.prompt_id == prompt_id,
            Ranking.presentation_key == "",
        )
    )
    return found is not None


async def progress_rows(session: AsyncSession, dataset_id: int) -> list[ProgressRow]:
    """Every assignment of the dataset with its prompt's external id and its flag count."""
    flags = (
        select(func.count())
        .where(
            AnnotationFlag.assignment_id == AnnotationAssignment.id,
            AnnotationFlag.kind == FlagKind.FLAG,
        )
        .scalar_subquery()
    )
    found = await session.execute(
        select(
            AnnotationAssignment.invitation_id,
            AnnotationAssignment.prompt_id,
            Prompt.external_id,
            AnnotationAssignment.state,
            AnnotationAssignment.seconds,
            flags,
        )
        .join(Prompt, Prompt.id == AnnotationAssignment.prompt_id)
        .where(AnnotationAssignment.dataset_id == dataset_id)
        .order_by(AnnotationAssignment.prompt_id, AnnotationAssignment.invitation_id)
    )
    return [
        ProgressRow(i, p, e, AssignmentState(s), sec, int(f or 0))
        for i, p, e, s, sec, f in found.all()
    ]


async def exported_rankings(
    session: AsyncSession, dataset_id: int
) -> list[tuple[str, Prompt, list[int], dict[str, Any] | None]]:
    """(annotator, prompt, ranks, presentation) of rankings made through the dataset's page."""
    found = await session.execute(
        select(Annotator.name, Prompt, Ranking.ranks, Ranking.presentation)
        .join(AnnotationAssignment, AnnotationAssignment.ranking_id == Ranking.id)
        .join(Prompt, Prompt.id == Ranking.prompt_id)
        .join(Annotator, Annotator.id == Ranking.annotator_id)
        .where(AnnotationAssignment.dataset_id == dataset_id)
        .order_by(Ranking.id)
    )
    return [(n, p, list(r), pres) for n, p, r, pres in found.all()]
