"""The report jobs' gate on reading: at most ``processes`` report requests use the database at
once, the next ``queue`` wait for a turn, and the rest are refused at once."""

from __future__ import annotations

import asyncio

import pytest
from tests.gateway.runs.helpers import eventually

from harmrank.gateway.cpu_pool import Threads
from harmrank.gateway.report_api.jobs import ReportJobs, ReportLimits, ReportsBusy


async def test_report_requests_take_turns_to_read_and_past_the_queue_are_refused() -> None:
    limits = ReportLimits(max_resamples=50, processes=1, queue=1, cache_entries=4)
    jobs = ReportJobs(limits, Threads())
    release = asyncio.Event()
    reading: list[int] = []

    async def reader(n: int) -> None:
        async with jobs.reading():
            reading.append(n)
            await release.wait()

    readers = [asyncio.create_task(reader(n)) for n in (1, 2)]

    async def both_in() -> bool:
        return jobs.readers == 2

    await eventually(both_in)
    assert reading == [1]  # the second waits for its turn
    with pytest.raises(ReportsBusy, match="2 report requests are reading or waiting to read"):
        async with jobs.reading():
            pass
    release.set()
    await asyncio.gather(*readers)
    assert (reading, jobs.readers) == ([1, 2], 0)
