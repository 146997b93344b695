"""Whether the database can serve: reachable, and migrated to the newest revision.

A gateway started before its migrate job ran, or pointed at a wrong or down database, would
otherwise answer every route with a 500 ("no such table", "connection refused"). Instead
``/readyz`` says why it is not ready, and every route that needs the database answers 503
``database_not_migrated`` or ``database_unavailable`` with the reason, until it is. Once the
schema is found current it is trusted (schemas are not un-migrated under a running gateway);
a connection lost later is caught where it fails (see ``database_error``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Receive, Scope, Send

from harmrank.common.errors import ErrorBody, error_response
from harmrank.gateway.db.migrate import current_revisions, head_revisions

RETRY_AFTER_SECONDS = 5
CONNECTION_ERRORS = (sa_exc.InterfaceError, sa_exc.TimeoutError, OSError, TimeoutError)
"""What a database that went away raises (sa_exc.OperationalError is handled apart: SQLite also
raises it for a missing table)."""


@dataclass(frozen=True)
class Problem:
    error_type: str
    reason: str


def _unreachable(exc: BaseException) -> Problem:
    detail = str(getattr(exc, "orig", None) or exc).splitlines()[0][:200] if str(exc) else ""
    reason = f"database unreachable: {type(exc).__name__}" + (f": {detail}" if detail else "")
    return Problem("database_unavailable", reason)


async def check_schema(engine: AsyncEngine) -> Problem | None:
    """None when the database answers and is at the newest revision, else what is wrong."""
    try:
        async with engine.connect() as connection:
            current = await connection.run_sync(current_revisions)
    except (sa_exc.DBAPIError, *CONNECTION_ERRORS) as exc:
        return _unreachable(exc)
    heads = head_revisions()
    if current == heads:
        return None
    at = ", ".join(sorted(current)) or "no revision (never migrated)"
    reason = (
        f"database not migrated: it is at {at}, the gateway needs {', '.join(sorted(heads))}; "
        "run harmrank migrate (in a cluster, the pods' init container does)"
    )
    return Problem("database_not_migrated", reason)


class DatabaseState:
    """The database's last known problem, checked again at most every ``interval`` seconds
    until none is found."""

    def __init__(self, engine: AsyncEngine, interval: float = 1.0) -> None:
        self.engine = engine
        self.interval = interval
        self.ready = False
        self._checked_at = float("-inf")
        self._problem: Problem | None = None

    async def problem(self) -> Problem | None:
        if self.ready:
            return None
        if time.monotonic() - self._checked_at >= self.interval:
            self._problem = await check_schema(self.engine)
            self._checked_at = time.monotonic()
            self.ready = self._problem is None
        return self._problem

    def lost(self) -> None:
        """A query failed as if the database went away: check again before trusting it."""
        self.ready = False
        self._checked_at = float("-inf")

    async def readiness(self) -> str | None:
        """A ``/readyz`` check: always looks afresh."""
        self.lost()
        found = await self.problem()
        return found.reason if found else None


def refusal(problem: Problem) -> JSONResponse:
    body = ErrorBody(error=problem.reason, error_type=problem.error_type)
    return error_response(503, body, {"Retry-After": str(RETRY_AFTER_SECONDS)})


class DatabaseGateMiddleware:
    """Answers 503 with the reason while the database cannot serve; ``open_paths`` (probes,
    metrics, the API document) pass whatever its state."""

    def __init__(self, app: ASGIApp, open_paths: frozenset[str]) -> None:
        self.app = app
        self.open_paths = open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state: DatabaseState | None = None
        if scope["type"] == "http" and scope["path"] not in self.open_paths:
            state = getattr(scope["app"].state, "database", None)
        found = await state.problem() if state is not None else None
        if found is None:
            await self.app(scope, receive, send)
            return
        await refusal(found)(scope, receive, send)


async def database_error(request: Request, exc: Exception) -> JSONResponse:
    """A query that failed because the database went away or lost its schema: a 503 with the
    reason, never a 500."""
    state: DatabaseState | None = getattr(request.app.state, "database", None)
    found = None
    if state is not None:
        state.lost()
        found = await state.problem()
    if found is None and isinstance(exc, (sa_exc.OperationalError, *CONNECTION_ERRORS)):
        found = _unreachable(exc)
    if found is None:  # a query the database refused for another reason: a fault of ours
        return error_response(500, ErrorBody(error="internal error", error_type="internal"))
    return refusal(found)


DATABASE_ERRORS = (sa_exc.DBAPIError, sa_exc.TimeoutError, ConnectionRefusedError)
"""What ``database_error`` is registered for (not every OSError: a missing file is no
database fault)."""
