"""The worker reads a run's stored traceparent once while the run is among its latest, and keeps
no more runs than that."""

from __future__ import annotations

import pytest
from sqlalchemy import update
from tests.gateway.runs.helpers import Fakes, Sessions, create, seed_dataset, spec

from harmrank.gateway.db.base import utc_now
from harmrank.gateway.db.run_models import Run
from harmrank.gateway.runs import worker
from harmrank.gateway.runs.tasks import Backoff
from harmrank.gateway.runs.worker import _Dispatcher


async def test_the_trace_contexts_kept_are_the_latest_runs(
    session_maker: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker, "TRACE_CONTEXTS_KEPT", 2)
    await seed_dataset(session_maker)
    runs = [(await create(session_maker, spec())).id for _ in range(3)]
    async with session_maker.begin() as session:
        for run_id in runs:
            parent = f"00-{run_id:032x}-{run_id:016x}-01"
            await session.execute(update(Run).where(Run.id == run_id).values(trace_context=parent))
    fakes = Fakes()
    dispatcher = _Dispatcher(
        session_maker, fakes.executors(), "w", 1, 1, 30.0, Backoff(), utc_now, 0.0
    )
    first, second, third = runs
    assert await dispatcher.trace_context(first) == f"00-{first:032x}-{first:016x}-01"
    await dispatcher.trace_context(second)
    await dispatcher.trace_context(first)  # used again: now the latest
    await dispatcher.trace_context(third)
    assert list(dispatcher.trace_contexts) == [first, third]  # second, least recent, dropped
    # A dropped run's context is read again when needed, not lost.
    assert await dispatcher.trace_context(second) == f"00-{second:032x}-{second:016x}-01"
    assert list(dispatcher.trace_contexts) == [third, second]
    await fakes.metrics.aclose()
