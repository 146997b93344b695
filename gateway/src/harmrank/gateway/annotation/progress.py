"""Progress of a dataset's annotation, per annotator and per item, for the admin view."""

from __future__ import annotations

import statistics
from collections import defaultdict

from sqlalchemy.ext.asyncio import AsyncSession

from harmrank.gateway.annotation import repository as repo
from harmrank.gateway.annotation.admin import DEFAULT_K
from harmrank.gateway.annotation.schemas import AnnotatorProgress, ItemProgress, Progress
from harmrank.gateway.datasets import repository as datasets_repo
from harmrank.gateway.db.annotation_models import AnnotationInvitation, AssignmentState


def _annotator(
    invitation: AnnotationInvitation, name: str | None, rows: list[repo.ProgressRow]
) -> AnnotatorProgress:
    states = [r.state for r in rows]
    seconds = [r.seconds for r in rows if r.state == AssignmentState.DONE and r.seconds is not None]
    skipped = states.count(AssignmentState.SKIPPED)
    return AnnotatorProgress(
        invitation_id=invitation.id,
        label=invitation.label,
        annotator=name,
        revoked=invitation.revoked_at is not None,
        warning_accepted=invitation.warning_accepted_at is not None,
        assigned=len(states) - skipped,
        done=states.count(AssignmentState.DONE),
        pending=states.count(AssignmentState.PENDING),
        skipped=skipped,
        flagged=sum(1 for r in rows if r.flags),
        median_seconds=statistics.median(seconds) if seconds else None,
    )


def _item(external_id: str, rows: list[repo.ProgressRow], effective_k: int) -> ItemProgress:
    states = [r.state for r in rows]
    done = states.count(AssignmentState.DONE)
    skipped = states.count(AssignmentState.SKIPPED)
    return ItemProgress(
        prompt_id=external_id,
        annotators=len(states) - skipped,
        done=done,
        skipped=skipped,
        flagged=sum(1 for r in rows if r.flags),
        complete=done >= effective_k,
    )


async def progress(session: AsyncSession, name: str) -> Progress:
    dataset = await datasets_repo.dataset_id_by_name(session, name)
    config = await repo.config(session, dataset)
    k = config.k if config else DEFAULT_K
    invitations = await repo.invitations(session, dataset)
    active = sum(1 for i in invitations if i.revoked_at is None)
    effective_k = max(1, min(k, active))
    rows = await repo.progress_rows(session, dataset)
    by_invitation: dict[int, list[repo.ProgressRow]] = defaultdict(list)
    by_item: dict[int, list[repo.ProgressRow]] = defaultdict(list)
    for row in rows:
        by_invitation[row.invitation_id].append(row)
        by_item[row.prompt_id].append(row)
    names = await repo.annotator_names(
        session, [i.annotator_id for i in invitations if i.annotator_id]
    )
    models = await datasets_repo.models_of(session, dataset)
    items = await repo.complete_items(session, dataset, [m for m, _ in models]) if models else []
    external = {r.prompt_id: r.external_id for r in rows}
    per_item = [_item(external[p], by_item[p], effective_k) for p in items if p in external]
    return Progress(
        dataset=name,
        k=k,
        effective_k=effective_k,
        items=len(items),
        items_complete=sum(1 for i in per_item if i.complete),
        rankings=sum(1 for r in rows if r.state == AssignmentState.DONE),
        annotators=[
            _annotator(i, names.get(i.annotator_id or 0), by_invitation[i.id]) for i in invitations
        ],
        per_item=per_item,
    )
