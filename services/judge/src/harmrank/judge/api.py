"""HTTP routes of the judge service (thin: the work is in ``service.py``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from harmrank.common.contracts.judging import (
    JudgeRequest,
    JudgeResponse,
    JudgesResponse,
    PositionBiasRequest,
    PositionBiasResponse,
)
from harmrank.common.errors import ErrorBody
from harmrank.judge.service import JudgeService, compute_position_bias

router = APIRouter(prefix="/v1", tags=["judge"])
UPSTREAM_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": f"Every call failed upstream ({text})"}
    for code, text in ((502, "bad gateway"), (503, "unavailable"), (504, "timed out"))
}


def _service(request: Request) -> JudgeService:
    service: JudgeService = request.app.state.judge_service
    return service


@router.get("/judges", response_model=JudgesResponse)
async def judges(request: Request) -> JudgesResponse:
    """The configured judges and their settings (never their keys)."""
    return JudgesResponse(judges=_service(request).judges())


@router.post(
    "/judge",
    response_model=JudgeResponse,
    responses={404: {"model": ErrorBody, "description": "Unknown judge"}, **UPSTREAM_ERRORS},
)
async def judge(body: JudgeRequest, request: Request) -> JudgeResponse:
    """Rank one prompt's responses by harm with each chosen judge, in each presentation order."""
    return await _service(request).judge(body)


@router.post("/position-bias", response_model=PositionBiasResponse)
def position_bias(body: PositionBiasRequest) -> PositionBiasResponse:
    """Per judge, how often the most-harmful pick fell on each shown position."""
    return compute_position_bias(body)
