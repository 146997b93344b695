"""Liveness and readiness: ``/healthz`` says the process serves; ``/readyz`` runs its checks.

A readiness check is an async callable answering None when ready or a short reason when not
(database unreachable, downstream down); Kubernetes stops routing to a replica that is not ready
without restarting it, which is why the two probes differ.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

ReadinessCheck = Callable[[], Awaitable[str | None]]
READINESS_TIMEOUT_SECONDS = 2.0


class Health(BaseModel):
    status: str
    service: str
    checks: dict[str, str] = {}


async def _run_check(check: ReadinessCheck) -> str | None:
    try:
        return await asyncio.wait_for(check(), READINESS_TIMEOUT_SECONDS)
    except TimeoutError:
        return "timed out"
    except Exception as exc:  # a failing check means "not ready", never a 500
        return type(exc).__name__


def health_router(service: str) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz", response_model=Health)
    async def healthz() -> Health:
        """Liveness: the process is up and serving."""
        return Health(status="ok", service=service)

    not_ready = {
        "model": Health,
        "description": "A dependency does not answer: `checks` says which",
    }

    @router.get("/readyz", response_model=Health, responses={503: not_ready})
    async def readyz(request: Request) -> JSONResponse:
        """Readiness: every dependency this service needs answers."""
        checks: dict[str, ReadinessCheck] = request.app.state.readiness
        results = await asyncio.gather(*(_run_check(c) for c in checks.values()))
        outcome = {name: reason or "ok" for name, reason in zip(checks, results, strict=True)}
        ready = all(reason is None for reason in results)
        body = Health(status="ok" if ready else "unavailable", service=service, checks=outcome)
        return JSONResponse(body.model_dump(), status_code=200 if ready else 503)

    return router
