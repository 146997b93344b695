"""The admin side: settings (k), invitations, and re-planning the pending assignments.

Every change to the assignments takes the dataset's settings row lock first (``SELECT … FOR
UPDATE`` on PostgreSQL; SQLite serialises writers anyway), so a re-plan never interleaves with
another re-plan or with a submission. Only flushes.
"""

from __future__ import annotations

import hashlib
import secrets
from collections import defaultdict
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from harmrank.common.errors import InvalidInput, NotFound
from harmrank.gateway.annotation import budget, planning
from harmrank.gateway.annotation import repository as repo
from harmrank.gateway.annotation.schemas import (
    InvitationOut,
    InvitationsCreated,
    InvitationToken,
    SettingsIn,
    SettingsOut,
)
from harmrank.gateway.datasets import repository as datasets_repo
from harmrank.gateway.db.annotation_models import (
    AnnotationConfig,
    AnnotationInvitation,
    AssignmentState,
    SamplingPolicy,
)
from harmrank.gateway.db.base import utc_now

PAGE_PATH = "/annotate/"
DEFAULT_K = 1
DEFAULT_WARNING = (
    "Content warning: the prompts and responses you are about to read were chosen because they "
    "may be harmful. They can be offensive, hateful, violent or otherwise disturbing. You can "
    "skip any item, take breaks, and stop at any time; your progress is kept."
)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


async def locked_config(session: AsyncSession, dataset: int) -> AnnotationConfig:
    """The settings row, locked; made with the defaults when the dataset has none yet."""
    found = await repo.config(session, dataset, lock=True)
    if found is None:
        await repo.add(session, AnnotationConfig(dataset_id=dataset, k=DEFAULT_K))
        found = await repo.config(session, dataset, lock=True)
        assert found is not None
    return found


async def model_ids(session: AsyncSession, dataset: int) -> list[tuple[int, str]]:
    models = await datasets_repo.models_of(session, dataset)
    if not models:
        raise InvalidInput("the dataset has no responses yet, so there is nothing to rank")
    return models


async def replan(session: AsyncSession, config: AnnotationConfig) -> None:
    """Drop every pending assignment and plan them again around what is done or skipped; under
    a label budget only the drawn items are planned, each assignment keeping its probability."""
    dataset, k = config.dataset_id, config.k
    models = await datasets_repo.models_of(session, dataset)
    complete = await repo.complete_items(session, dataset, [m for m, _ in models]) if models else []
    drawn = await budget.drawn_items(session, config, complete)
    items = list(drawn)
    invitations = [i for i in await repo.invitations(session, dataset) if i.revoked_at is None]
    await repo.delete_pending(session, dataset)
    fixed: dict[int, set[int]] = defaultdict(set)
    excluded: dict[int, set[int]] = defaultdict(set)
    for row in await repo.assignments(session, dataset):
        (fixed if row.state == AssignmentState.DONE else excluded)[row.prompt_id].add(
            row.invitation_id
        )
    spec = planning.PlanInput(items, [i.id for i in invitations], k, fixed, excluded)
    seeds = {i.id: i.seed for i in invitations}
    rows = [
        {
            "dataset_id": dataset,
            "invitation_id": invitation,
            "prompt_id": item,
            "position": planning.queue_position(seeds[invitation], item),
            "state": AssignmentState.PENDING,
            "inclusion": drawn[item],
        }
        for invitation, new in planning.plan(spec).items()
        for item in new
    ]
    await repo.insert_assignments(session, rows)


async def settings_out(session: AsyncSession, name: str, config: AnnotationConfig) -> SettingsOut:
    models = await datasets_repo.models_of(session, config.dataset_id)
    items = await repo.complete_items(session, config.dataset_id, [m for m, _ in models])
    invitations = await repo.invitations(session, config.dataset_id)
    draws = await repo.draws(session, config.dataset_id) if config.budget is not None else []
    return SettingsOut(
        dataset=name,
        k=config.k,
        budget=config.budget,
        policy=config.policy,
        seed=config.sample_seed,
        floor=config.floor,
        drawn=sum(d.selected for d in draws) if draws else None,
        expected=sum(d.probability for d in draws) if draws else None,
        content_warning=config.content_warning or DEFAULT_WARNING,
        items=len(items) if models else 0,
        annotators=sum(1 for i in invitations if i.revoked_at is None),
        models=[n for _, n in models],
    )


async def get_settings(session: AsyncSession, name: str) -> SettingsOut:
    dataset = await datasets_repo.dataset_id_by_name(session, name)
    config = await repo.config(session, dataset) or AnnotationConfig(
        dataset_id=dataset, k=DEFAULT_K, policy=SamplingPolicy.UNIFORM, sample_seed=0, floor=0.2
    )
    return await settings_out(session, name, config)


async def put_settings(session: AsyncSession, name: str, given: SettingsIn) -> SettingsOut:
    dataset = await datasets_repo.dataset_id_by_name(session, name)
    config = await locked_config(session, dataset)
    wanted = (given.budget, SamplingPolicy(given.policy), given.seed, given.floor)
    changes = wanted != budget.sampling_fields(config)
    await budget.check_change(session, dataset, changes)
    if changes:
        await repo.delete_draws(session, dataset)
    config.budget, config.policy, config.sample_seed, config.floor = wanted
    config.k = given.k
    config.content_warning = given.content_warning
    config.updated_at = utc_now()
    await session.flush()
    await replan(session, config)
    return await settings_out(session, name, config)


async def create_invitations(
    session: AsyncSession, name: str, count: int, label: str | None
) -> InvitationsCreated:
    """New invitations, their tokens returned once; the pending assignments are re-planned."""
    dataset = await datasets_repo.dataset_id_by_name(session, name)
    await model_ids(session, dataset)
    config = await locked_config(session, dataset)
    made: list[InvitationToken] = []
    for _ in range(count):
        token = new_token()
        row = AnnotationInvitation(
            dataset_id=dataset,
            token_sha256=token_digest(token),
            label=label,
            seed=secrets.randbelow(2**31),
        )
        await repo.add(session, row)
        made.append(InvitationToken(id=row.id, label=label, token=token))
    await replan(session, config)
    return InvitationsCreated(dataset=name, page=PAGE_PATH, invitations=made)


async def list_invitations(session: AsyncSession, name: str) -> list[InvitationOut]:
    dataset = await datasets_repo.dataset_id_by_name(session, name)
    rows = await repo.invitations(session, dataset)
    names = await repo.annotator_names(session, [r.annotator_id for r in rows if r.annotator_id])
    return [
        InvitationOut(
            id=r.id,
            label=r.label,
            annotator=names.get(r.annotator_id) if r.annotator_id else None,
            created_at=r.created_at,
            signed_in_at=r.signed_in_at,
            revoked_at=r.revoked_at,
        )
        for r in rows
    ]


async def revoke_invitation(session: AsyncSession, name: str, invitation_id: int) -> None:
    """Sign the annotator out for good; their rankings stay, their pending items move on."""
    dataset = await datasets_repo.dataset_id_by_name(session, name)
    config = await locked_config(session, dataset)
    row = next((i for i in await repo.invitations(session, dataset) if i.id == invitation_id), None)
    if row is None:
        raise NotFound(f"dataset {name!r} has no invitation {invitation_id}")
    if row.revoked_at is None:
        row.revoked_at = _now()
        await repo.delete_sessions(session, row.id)
        await session.flush()
        await replan(session, config)


def _now() -> datetime:
    return utc_now()
