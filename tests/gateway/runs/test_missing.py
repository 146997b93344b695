"""A run report's missing rankings: for one run (the run API), and added up per judge over the
reports written since the gateway's first reading (its metric), each report counted once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.gateway.runs.helpers import Sessions, create, seed_dataset, spec

from harmrank.gateway.db.run_models import RunReport
from harmrank.gateway.runs import missing, service
from harmrank.gateway.telemetry import REPORT_OVERLAP, ReportTally, read_reports

NOW = datetime.now(UTC)


async def runs(sessions: Sessions, n: int) -> list[int]:
    await seed_dataset(sessions)
    return [(await create(sessions, spec())).id for _ in range(n)]


async def report(
    sessions: Sessions, run_id: int, lacking: dict[str, int] | None, at: datetime
) -> None:
    body = {"run": {"missing_rankings": lacking}} if lacking is not None else {"run": {}}
    async with sessions.begin() as session:
        session.add(RunReport(run_id=run_id, report=body, created_at=at))


async def read(sessions: Sessions, tally: ReportTally) -> dict[str, int]:
    async with sessions() as session:
        await read_reports(session, tally)
    return tally.missing


async def test_the_run_api_states_the_reports_missing_rankings(session_maker: Sessions) -> None:
    full, lacking, old, unreported = await runs(session_maker, 4)
    await report(session_maker, full, {}, NOW)
    await report(session_maker, lacking, {"judge-x": 4}, NOW)
    await report(session_maker, old, None, NOW)  # written before reports had the key
    async with session_maker() as session:
        shown = {r: (await service.get_run(session, r)).missing_rankings for r in (full, lacking)}
        assert shown == {full: {}, lacking: {"judge-x": 4}}
        assert (await service.get_run(session, old)).missing_rankings == {}
        assert (await service.get_run(session, unreported)).missing_rankings is None
        assert await missing.of_run(session, unreported) is None
        page = await service.list_runs(session, status_filter=None, limit=10, cursor=None)
        assert {r.missing_rankings for r in page.items} == {None}  # not read for listings


async def test_each_new_report_is_counted_once_and_older_ones_never(
    session_maker: Sessions,
) -> None:
    before, first, late, again = await runs(session_maker, 4)
    await report(session_maker, before, {"judge-x": 5}, NOW - timedelta(minutes=1))
    tally = ReportTally()
    assert await read(session_maker, tally) == {}  # what was there at the start is not counted
    await report(session_maker, first, {"judge-x": 2, "judge-y": 6}, NOW)
    assert await read(session_maker, tally) == {"judge-x": 2, "judge-y": 6}
    assert await read(session_maker, tally) == {"judge-x": 2, "judge-y": 6}  # not twice
    # Stamped before the newest report read, committed after it: still found, once.
    await report(session_maker, late, {"judge-x": 1}, NOW - timedelta(seconds=30))
    assert await read(session_maker, tally) == {"judge-x": 3, "judge-y": 6}
    await report(session_maker, again, {}, NOW + REPORT_OVERLAP * 3)
    assert await read(session_maker, tally) == {"judge-x": 3, "judge-y": 6}
    # The reports left behind the look-back are forgotten, the newer ones kept.
    assert set(tally.counted) == {again}
