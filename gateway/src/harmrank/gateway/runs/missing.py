"""The rankings a run's report states as missing: per judge, the run's prompts it ranked none of
(the report's ``run.missing_rankings``, judges that ranked every prompt left out).

Read from the stored report by a JSON path, so the database sends that small object and never
the whole report: for one run (the run API), and for the reports written since a moment (the
gateway's metrics).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from harmrank.gateway.db.run_models import RunReport

_MISSING = RunReport.report["run"]["missing_rankings"]


@dataclass(frozen=True)
class ReportMissing:
    run_id: int
    created_at: datetime
    missing: dict[str, int]


async def of_run(session: AsyncSession, run_id: int) -> dict[str, int] | None:
    """The run report's missing rankings per judge; None when the run has no report."""
    found = (
        await session.execute(select(_MISSING).where(RunReport.run_id == run_id))
    ).one_or_none()
    return None if found is None else _counts(found[0])


async def newest_report_at(session: AsyncSession) -> datetime | None:
    found: datetime | None = await session.scalar(select(func.max(RunReport.created_at)))
    return found


async def since(session: AsyncSession, moment: datetime) -> Sequence[ReportMissing]:
    """The reports written at ``moment`` or later, oldest first, with their missing rankings."""
    found = await session.execute(
        select(RunReport.run_id, RunReport.created_at, _MISSING)
        .where(RunReport.created_at >= moment)
        .order_by(RunReport.created_at)
    )
    return [ReportMissing(run_id, at, _counts(missing)) for run_id, at, missing in found.all()]


def _counts(value: Any) -> dict[str, int]:
    # Reports written before the key existed have none: nothing is known to be missing.
    if not isinstance(value, dict):
        return {}
    return {str(judge): int(n) for judge, n in value.items()}
