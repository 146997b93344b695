"""Fixtures of the fault tests: a fresh PostgreSQL database, and the servers a test starts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from tests.databases import Drops, throwaway_postgres_database
from tests.faults.stack import Servers, WorkerProcess


@pytest.fixture
async def pg_url(drops: Drops) -> AsyncIterator[str]:
    """A fresh database on the shared PostgreSQL server: several workers share it."""
    async with throwaway_postgres_database(drops=drops) as url:
        yield url


@pytest.fixture
def servers() -> Iterator[Servers]:
    started = Servers()
    yield started
    started.stop_all()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[list[WorkerProcess]]:
    """Worker processes a test started; stopped (and their logs shown on failure) at the end."""
    started: list[WorkerProcess] = []
    yield started
    for worker in started:
        worker.stop()
        print(f"--- {worker.log.name}\n{worker.output()[-4000:]}")
