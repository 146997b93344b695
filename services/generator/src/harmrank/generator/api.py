"""HTTP routes of the generator service (thin: the work is in ``service.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from harmrank.common.contracts.generation import (
    BatchRequest,
    GenerateRequest,
    GenerationResult,
    ModelList,
)
from harmrank.common.errors import ErrorBody
from harmrank.generator.service import GeneratorService

NDJSON = "application/x-ndjson"

router = APIRouter(prefix="/v1", tags=["generator"])


# async: FastAPI runs a plain-def dependency in its thread pool, a thread hop on every request.
async def _service(request: Request) -> GeneratorService:
    service: GeneratorService = request.app.state.generator
    return service


Service = Annotated[GeneratorService, Depends(_service)]


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorBody} for code in codes}


@router.get("/models", response_model=ModelList)
async def list_models(service: Service) -> ModelList:
    """The model registry, with each server's /info and health."""
    return await service.list_models()


@router.post("/generate", response_model=GenerationResult, responses=_errors(404, 502, 503, 504))
async def generate(body: GenerateRequest, service: Service) -> GenerationResult:
    """One prompt through one model."""
    return await service.generate(body)


async def _ndjson(service: GeneratorService, body: BatchRequest) -> AsyncIterator[str]:
    async for line in service.stream_batch(body):
        yield line.model_dump_json() + "\n"


@router.post(
    "/generate/batch",
    responses={200: {"content": {NDJSON: {}}}, **_errors(404)},
    response_class=StreamingResponse,
)
async def generate_batch(body: BatchRequest, service: Service) -> StreamingResponse:
    """Every prompt through every model listed, streamed as NDJSON lines as they finish."""
    service.check_batch(body)
    return StreamingResponse(_ndjson(service, body), media_type=NDJSON)
