"""Admin routes of a dataset's annotation: settings, invitations, progress, agreement, export.

Writes here are admin writes: with API tokens configured the gateway's write-token middleware
requires one, like every other write under ``/v1``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from harmrank.common.errors import ErrorBody
from harmrank.gateway.annotation import admin, agreement, export, progress
from harmrank.gateway.annotation.schemas import (
    Agreement,
    InvitationCreate,
    InvitationOut,
    InvitationsCreated,
    Progress,
    SettingsIn,
    SettingsOut,
)
from harmrank.gateway.deps import Session
from harmrank.gateway.export import ExportFormat
from harmrank.gateway.query import RawCsv
from harmrank.metrics.aggregate_humans import NaRule
from harmrank.metrics.params import DEFAULT_RESAMPLES

router = APIRouter(prefix="/v1/datasets/{name}/annotation", tags=["annotation"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No such dataset"},
}
_WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    **_ERRORS,
    401: {"model": ErrorBody, "description": "A write token is required"},
}


@router.get("/settings", responses=_ERRORS)
async def get_settings(name: str, session: Session) -> SettingsOut:
    """The annotation settings of a dataset: k, the content warning, items and annotators."""
    return await admin.get_settings(session, name)


@router.put("/settings", responses=_WRITE_ERRORS)
async def put_settings(name: str, body: SettingsIn, session: Session) -> SettingsOut:
    """Set k (annotators per item) and the content warning; pending assignments are re-planned."""
    return await admin.put_settings(session, name, body)


@router.post("/invitations", status_code=201, responses=_WRITE_ERRORS)
async def create_invitations(
    name: str, body: InvitationCreate, session: Session
) -> InvitationsCreated:
    """Create invitations; each token is shown in this answer only (stored as its SHA-256)."""
    return await admin.create_invitations(session, name, body.count, body.label)


@router.get("/invitations", responses=_ERRORS)
async def list_invitations(name: str, session: Session) -> list[InvitationOut]:
    """The dataset's invitations (never their tokens) and who signed in with them."""
    return await admin.list_invitations(session, name)


@router.delete("/invitations/{invitation_id}", status_code=204, responses=_WRITE_ERRORS)
async def revoke_invitation(name: str, invitation_id: int, session: Session) -> None:
    """Revoke an invitation: its sessions end; its rankings stay; its pending items move on."""
    await admin.revoke_invitation(session, name, invitation_id)


@router.get("/progress", responses=_ERRORS)
async def get_progress(name: str, session: Session) -> Progress:
    """Progress per annotator and per item."""
    return await progress.progress(session, name)


@router.get("/agreement", responses=_ERRORS)
async def get_agreement(
    name: str,
    session: Session,
    p: Annotated[float, Query(gt=0, lt=1, description="RBO persistence (explicit).")],
    resamples: Annotated[
        int, Query(ge=0, le=5000, description="Bootstrap resamples.")
    ] = DEFAULT_RESAMPLES,
    seed: int = 0,
    confidence: Annotated[float, Query(gt=0, lt=1)] = 0.95,
    na_rule: Annotated[
        NaRule, Query(description="When the aggregate calls a model harmful.")
    ] = "majority",
    min_annotators: Annotated[
        int, Query(ge=1, le=100, description="Annotators an item needs to be in the reference.")
    ] = 1,
    humans: Annotated[
        agreement.HumanSet,
        Query(description="`all` human annotators, or only the annotation `page`'s."),
    ] = "all",
) -> Agreement:
    """Agreement among humans (pairwise, Krippendorff's α), their aggregate, and judges vs it."""
    settings = agreement.AgreementParams(
        p=p,
        resamples=resamples,
        seed=seed,
        confidence=confidence,
        na_rule=na_rule,
        min_annotators=min_annotators,
        humans=humans,
    )
    return await agreement.human_agreement(session, name, settings)


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={
        **_ERRORS,
        200: {"content": {"text/csv": {}, "application/x-ndjson": {}}, "description": "Rankings"},
    },
)
async def export_rankings(
    name: str,
    session: Session,
    format: Annotated[ExportFormat, Query(description="`csv` (the study's layout) or `jsonl`.")],
    raw: RawCsv = False,
) -> StreamingResponse:
    """Download the page's rankings, in the study's CSV layout or as JSONL (both re-importable;
    re-import a CSV exported with `raw=true` to get texts back exactly)."""
    return await export.export(session, name, format, raw)
