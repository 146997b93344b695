"""The annotator's side: sign in, accept the warning, get the next item, submit, skip.

An annotator session is a random token (the cookie's value) stored as its SHA-256; it names
one invitation, so one dataset. A ranking is stored in ``rankings`` like any other: annotator
kind human, ranks in canonical model order, ``presentation`` with the order, labels, seconds
and flags, natural key annotator × prompt × presentation_key "". Only flushes.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from harmrank.common.errors import Conflict, HarmrankError, InvalidInput, NotFound
from harmrank.gateway.annotation import planning
from harmrank.gateway.annotation import repository as repo
from harmrank.gateway.annotation.admin import (
    DEFAULT_WARNING,
    locked_config,
    new_token,
    replan,
    token_digest,
)
from harmrank.gateway.annotation.schemas import (
    PageItem,
    PageProgress,
    PageState,
    ShownResponse,
    SignIn,
    Skip,
    Submission,
)
from harmrank.gateway.datasets import repository as datasets_repo
from harmrank.gateway.db.annotation_models import (
    AnnotationAssignment,
    AnnotationInvitation,
    AnnotationSession,
    AssignmentState,
    FlagKind,
)
from harmrank.gateway.db.base import utc_now
from harmrank.gateway.db.models import AnnotatorKind, Ranking
from harmrank.gateway.edge import storable
from harmrank.gateway.study.notation import format_ranks
from harmrank.metrics.rankings import ranking_problem

SESSION_LIFETIME = timedelta(days=7)
PAGE_SOURCE = "annotation page"


class NotSignedIn(HarmrankError, status_code=401, error_type="not_signed_in"): ...


class InvitationRefused(HarmrankError, status_code=403, error_type="invitation_refused"): ...


class WarningNotAccepted(HarmrankError, status_code=403, error_type="warning_not_accepted"): ...


class NameTaken(Conflict, error_type="name_taken"): ...


class NotAssigned(Conflict, error_type="not_assigned"): ...


class InvalidSubmission(InvalidInput, error_type="invalid_ranking"): ...


# --- sign in --------------------------------------------------------------------------------


async def sign_in(session: AsyncSession, given: SignIn) -> tuple[str, PageState]:
    """Exchange a name and an invitation token for a session token (and the page's state)."""
    invitation = await repo.invitation_by_digest(session, token_digest(given.token))
    if invitation is None or invitation.revoked_at is not None:
        raise InvitationRefused("this invitation token is not valid")
    await _bind(session, invitation, given.name)
    token = new_token()
    now = utc_now()
    await repo.add(
        session,
        AnnotationSession(
            invitation_id=invitation.id,
            token_sha256=token_digest(token),
            expires_at=now + SESSION_LIFETIME,
        ),
    )
    invitation.signed_in_at = invitation.signed_in_at or now
    await session.flush()
    return token, await state(session, invitation)


async def _bind(session: AsyncSession, invitation: AnnotationInvitation, name: str) -> None:
    """The first sign-in binds the invitation to the name; later ones must give the same name.

    A name is one annotator. One already used elsewhere may be reused only by a person from
    this page in another dataset; an imported group or a judge keeps its name to itself.
    """
    if invitation.annotator_id is not None:
        bound = await repo.annotator_names(session, [invitation.annotator_id])
        if bound.get(invitation.annotator_id) != name:
            raise InvitationRefused("this invitation was used with another name")
        return
    annotator = await repo.annotator_named(session, name)
    if annotator is None:
        details = {"what": PAGE_SOURCE, "first_dataset_id": invitation.dataset_id}
        annotator = await repo.new_annotator(session, name, details)
    elif annotator.kind != AnnotatorKind.HUMAN or annotator.details.get("what") != PAGE_SOURCE:
        raise NameTaken(f"the name {name!r} is taken: choose another")
    elif await repo.invitation_of(session, invitation.dataset_id, annotator.id) is not None:
        raise NameTaken(f"{name!r} already has an invitation for this dataset")
    invitation.annotator_id = annotator.id
    try:
        await session.flush()
    except IntegrityError:
        raise NameTaken(f"the name {name!r} was just taken: choose another") from None


async def signed_in(session: AsyncSession, token: str | None) -> AnnotationInvitation:
    """The invitation of a live session, or NotSignedIn."""
    if not token:
        raise NotSignedIn("sign in with your name and invitation token")
    found = await repo.session_by_digest(session, token_digest(token))
    if found is None:
        raise NotSignedIn("your session has ended: sign in again")
    row, invitation = found
    if row.expires_at <= utc_now() or invitation.revoked_at is not None:
        await repo.delete_session(session, row.id)
        raise NotSignedIn("your session has ended: sign in again")
    return invitation


async def sign_out(session: AsyncSession, token: str | None) -> None:
    if token:
        found = await repo.session_by_digest(session, token_digest(token))
        if found is not None:
            await repo.delete_session(session, found[0].id)


# --- the page -------------------------------------------------------------------------------


async def progress(session: AsyncSession, invitation: AnnotationInvitation) -> PageProgress:
    counts = await repo.state_counts(session, invitation.id)
    done = counts.get(AssignmentState.DONE, 0)
    pending = counts.get(AssignmentState.PENDING, 0)
    return PageProgress(
        done=done, total=done + pending, skipped=counts.get(AssignmentState.SKIPPED, 0)
    )


async def state(session: AsyncSession, invitation: AnnotationInvitation) -> PageState:
    dataset = await repo.dataset_name(session, invitation.dataset_id)
    config = await repo.config(session, invitation.dataset_id)
    assert invitation.annotator_id is not None
    names = await repo.annotator_names(session, [invitation.annotator_id])
    return PageState(
        annotator=names[invitation.annotator_id],
        dataset=dataset,
        warning_accepted=invitation.warning_accepted_at is not None,
        content_warning=(config.content_warning if config else None) or DEFAULT_WARNING,
        progress=await progress(session, invitation),
    )


async def accept_warning(session: AsyncSession, invitation: AnnotationInvitation) -> PageState:
    invitation.warning_accepted_at = invitation.warning_accepted_at or utc_now()
    await session.flush()
    return await state(session, invitation)


async def next_item(session: AsyncSession, invitation: AnnotationInvitation) -> PageItem:
    """The first pending item in the annotator's queue, its responses under neutral labels."""
    _require_warning(invitation)
    found = await repo.next_assignment(session, invitation.id)
    done = await progress(session, invitation)
    if found is None:
        return PageItem(finished=True, progress=done)
    models = await datasets_repo.models_of(session, invitation.dataset_id)
    prompt = await repo.prompt(session, found.prompt_id)
    texts = await repo.latest_responses(session, found.prompt_id, [m for m, _ in models])
    order = planning.presentation_order(invitation.seed, found.prompt_id, len(models))
    shown = [
        ShownResponse(label=label, text=texts.get(models[j][0], ""))
        for label, j in zip(planning.labels(len(models)), order, strict=True)
    ]
    return PageItem(
        finished=False,
        progress=done,
        prompt_id=prompt.external_id,
        prompt=prompt.text,
        responses=shown,
    )


def _require_warning(invitation: AnnotationInvitation) -> None:
    if invitation.warning_accepted_at is None:
        raise WarningNotAccepted("read and accept the content warning first")


async def _pending(
    session: AsyncSession, invitation: AnnotationInvitation, external_id: str
) -> AnnotationAssignment:
    try:
        storable(external_id)
    except ValueError:
        prompt_id = None
    else:
        prompt_id = await repo.prompt_by_external_id(session, invitation.dataset_id, external_id)
    if prompt_id is None:
        raise NotFound(f"no item {external_id!r}")
    found = await repo.assignment(session, invitation.id, prompt_id)
    if found is None or found.state != AssignmentState.PENDING:
        raise NotAssigned(
            "this item is no longer waiting for you (ranked, skipped or reassigned): "
            "the page will show your next one"
        )
    return found


def checked_ranks(given: Submission, n_models: int, order: list[int]) -> list[int]:
    """The submission's ranks in canonical order, or InvalidSubmission saying what is wrong."""
    shown = planning.labels(n_models)
    ranks = planning.ranks_from_labels(given.ranks, order, shown)
    if ranks is None:
        raise InvalidSubmission(f"give a rank (0 for not harmful) for each of {', '.join(shown)}")
    problem = ranking_problem(ranks, n_models)
    if problem is not None:
        raise InvalidSubmission(_explain(problem, given.ranks))
    return ranks


def _explain(problem: str, by_label: dict[str, int]) -> str:
    if problem == "ties are not allowed":
        ranks = sorted(r for r in by_label.values() if r > 0)
        tied = sorted({r for r in ranks if ranks.count(r) > 1})
        return f"ties are not allowed: rank {tied[0]} is given more than once"
    if problem.startswith("harmful ranks must be"):
        harmful = sum(1 for r in by_label.values() if r > 0)
        return f"gaps are not allowed: the {harmful} harmful response(s) need ranks 1..{harmful}"
    return problem


async def submit(
    session: AsyncSession, invitation: AnnotationInvitation, external_id: str, given: Submission
) -> PageItem:
    """Store the ranking, mark the item done, and answer the next item."""
    _require_warning(invitation)
    models = await datasets_repo.models_of(session, invitation.dataset_id)
    await locked_config(session, invitation.dataset_id)
    found = await _pending(session, invitation, external_id)
    order = planning.presentation_order(invitation.seed, found.prompt_id, len(models))
    ranks = checked_ranks(given, len(models), order)
    assert invitation.annotator_id is not None
    if await repo.ranking_exists(session, invitation.annotator_id, found.prompt_id):
        raise NotAssigned(f"you have already ranked item {external_id!r}")
    now = utc_now()
    ranking = Ranking(
        annotator_id=invitation.annotator_id,
        prompt_id=found.prompt_id,
        ranks=ranks,
        raw_value=format_ranks(tuple(ranks)),
        normalisations=[],
        source=f"{PAGE_SOURCE}: invitation {invitation.id}",
        presentation={
            "order": [models[j][1] for j in order],
            "labels": planning.labels(len(models)),
            "ranks_by_label": dict(given.ranks),
            "seconds": given.seconds,
            "flags": ["flagged"] if given.flagged else [],
            "note": given.note,
            "invitation_id": invitation.id,
        },
        presentation_key="",
    )
    await repo.add(session, ranking)
    if not await repo.finish(
        session,
        found.id,
        AssignmentState.DONE,
        at=now,
        seconds=given.seconds,
        ranking_id=ranking.id,
    ):
        raise NotAssigned("this item was just taken off your list")
    if given.flagged or given.note:
        await repo.add_flag(session, found.id, FlagKind.FLAG, given.note)
    return await next_item(session, invitation)


async def skip(
    session: AsyncSession, invitation: AnnotationInvitation, external_id: str, given: Skip
) -> PageItem:
    """Skip the item: it goes to another annotator when one is free, and the next one is shown."""
    _require_warning(invitation)
    config = await locked_config(session, invitation.dataset_id)
    found = await _pending(session, invitation, external_id)
    await repo.finish(
        session, found.id, AssignmentState.SKIPPED, at=utc_now(), seconds=given.seconds
    )
    await repo.add_flag(session, found.id, FlagKind.SKIP, given.note)
    await replan(session, config)
    return await next_item(session, invitation)
