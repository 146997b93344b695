"""Fixtures of the security tests: a fresh PostgreSQL database and the servers a test starts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from tests.databases import Drops, throwaway_postgres_database
from tests.faults.stack import Servers


@pytest.fixture
async def pg_url(drops: Drops) -> AsyncIterator[str]:
    async with throwaway_postgres_database(drops=drops) as url:
        yield url


@pytest.fixture
def servers() -> Iterator[Servers]:
    started = Servers(capture_logs=True)
    yield started
    started.stop_all()
