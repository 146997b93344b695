"""PostgreSQL's plan of a statement exactly as the code sends it: caught on its way to the
driver, then prepared and explained with its parameters (for the plan tests and
``bench/claim_readiness.py``)."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

GENERIC, CUSTOM = "force_generic_plan", "force_custom_plan"

Sent = tuple[str, Sequence[Any]]

_names = itertools.count()


async def sent_statements(
    sessions: async_sessionmaker[AsyncSession],
    call: Callable[[AsyncSession], Awaitable[object]],
) -> list[Sent]:
    """Every statement ``call`` sends, with its parameters, in the session it is given (rolled
    back after) or in sessions of its own (``sessions``' engine)."""
    sent: list[Sent] = []

    def catch(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        sent.append((statement, parameters))

    engine = sessions.kw["bind"].sync_engine
    async with sessions() as session:
        event.listen(engine, "before_cursor_execute", catch)
        try:
            await call(session)
        finally:
            event.remove(engine, "before_cursor_execute", catch)
        await session.rollback()
    return sent


async def sent_statement(
    sessions: async_sessionmaker[AsyncSession],
    call: Callable[[AsyncSession], Awaitable[object]],
    starts: str,
) -> Sent:
    """The first statement ``call`` sends that starts so, with its parameters (the call itself
    rolled back)."""
    found = [sent for sent in await sent_statements(sessions, call) if sent[0].startswith(starts)]
    if not found:
        raise AssertionError(f"the call sent no statement starting with {starts!r}")
    return found[0]


async def explain(
    connection: AsyncConnection, sent: Sent, mode: str = GENERIC, options: str = ""
) -> str:
    """EXPLAIN (with ``options``, e.g. "ANALYZE, BUFFERS", which runs it: roll back after) of
    the sent statement as a prepared statement, in the transaction of ``connection``. ``mode``
    GENERIC: the plan for any parameters, which a worker or the gateway soon runs, executing
    its prepared statements again and again; CUSTOM: the plan for these parameters, which
    PostgreSQL keeps making while a generic plan looks costlier."""
    statement, parameters = sent
    name = f"sent_{next(_names)}"  # a connection may explain several: one name each
    await connection.exec_driver_sql(f"PREPARE {name} AS {statement}")
    await connection.exec_driver_sql(f"SET LOCAL plan_cache_mode = {mode}")
    values = ", ".join(_literal(v) for v in parameters)
    what = f"EXPLAIN ({options})" if options else "EXPLAIN"
    found = await connection.exec_driver_sql(f"{what} EXECUTE {name}({values})")
    return "\n".join(row[0] for row in found)


def _literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, int):
        return str(value)
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    return "'" + text.replace("'", "''") + "'"
