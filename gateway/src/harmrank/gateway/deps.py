"""Request dependencies shared by the gateway's routers.

Sessions commit at the edge: a route's services only flush, and the commit happens here once
the route has returned. Declare the dependency with ``scope="function"`` (the ``Session``
alias does) so the commit runs *before* the response is sent: with FastAPI's default
``"request"`` scope a client could be told 201 for a write that then fails to commit, or read
before it is visible.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker


def session_maker(request: Request) -> async_sessionmaker[AsyncSession]:
    """The app's session factory, which its lifespan puts on ``app.state.sessions``."""
    sessions: async_sessionmaker[AsyncSession] = request.app.state.sessions
    return sessions


async def session_dependency(request: Request) -> AsyncIterator[AsyncSession]:
    """A session for the route, committed when the route returns, rolled back when it raises."""
    async with session_maker(request)() as session:
        yield session
        await session.commit()


async def sessions_dependency(request: Request) -> async_sessionmaker[AsyncSession]:
    # async although it awaits nothing: FastAPI runs a plain-def dependency in its thread
    # pool, a thread hop on every request.
    return session_maker(request)


Session = Annotated[AsyncSession, Depends(session_dependency, scope="function")]
Sessions = Annotated[async_sessionmaker[AsyncSession], Depends(sessions_dependency)]
