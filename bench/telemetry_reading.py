"""What one reading of the gateway's task metrics costs on a big tasks table (issue #21).

Run: ``uv run python bench/telemetry_reading.py`` (about half a minute; ``--runs 50`` for a
quick check). A throwaway PostgreSQL database ($HARMRANK_TEST_POSTGRES_URL), migrated by
Alembic, filled in bulk with SQL: ``--runs`` finished runs of 4,000 tasks each (2,000
generate, 1,999 judge, a score task; mostly done, some failed or reused) and one active run of
``--active`` tasks, three quarters finished, the rest queued and 16 running. The table is then
vacuumed and analyzed, as autovacuum keeps a table whose old rows no longer change.

Figures: the median time of ``telemetry.read_snapshot`` over ``--readings`` readings with one
tally kept across them (the first reading counts every run; the later ones what is active or
changed), against the baseline of the three whole-table statements every reading sent before;
and EXPLAIN (ANALYZE, BUFFERS) of each statement of a steady reading. Prints figures; asserts
nothing.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
# The repository's tests/ helpers, ahead of the `tests` package ppi-python installs.
import repo_tests

sys.path.insert(0, str(repo_tests.ROOT))
import argparse
import asyncio
import statistics
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import event, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine
from tests.conftest import throwaway_postgres_database

from harmrank.gateway import telemetry
from harmrank.gateway.db import Annotator, AnnotatorKind, Dataset, Model, Prompt
from harmrank.gateway.db.engine import create_engine, session_factory
from harmrank.gateway.db.migrate import upgrade_async
from harmrank.gateway.db.run_models import Run
from harmrank.gateway.task_tally import TaskTally
from harmrank.gateway.telemetry import TaskSnapshot

TASKS_PER_RUN = 4000
MODELS = ("small-a", "small-b")

# One run of tasks per row of generate_series(1, :tasks): task i of a run is a generate task for
# i <= half, a judge task above, the last one its score task; states spread by i's remainders.
_FILL = """
INSERT INTO tasks (run_id, key, stage, state, prompt_id, model_id, annotator_id,
                   presentation_key, order_index, attempts, max_attempts, error_type,
                   error_message, created_at, finished_at)
SELECT r.id, 't' || i,
       CASE WHEN i = :tasks THEN 'score' WHEN i <= :tasks / 2 THEN 'generate' ELSE 'judge' END,
       CASE WHEN r.id = :active AND i > :tasks * 3 / 4 THEN
                 CASE WHEN i > :tasks - 17 AND i < :tasks THEN 'running' ELSE 'queued' END
            WHEN i % 50 = 7 THEN 'failed' WHEN i % 70 = 3 THEN 'reused' ELSE 'done' END,
       CAST(:prompt0 AS bigint) + i % 1000,
       CASE WHEN i <= :tasks / 2 THEN CAST(:model0 AS bigint) + i / 7 % 2 END,
       CASE WHEN i > :tasks / 2 AND i < :tasks THEN CAST(:judge AS bigint) END,
       CASE WHEN i > :tasks / 2 AND i < :tasks THEN 'k' || i % 2 END,
       CASE WHEN i > :tasks / 2 AND i < :tasks THEN i % 2 END,
       1, 3,
       CASE WHEN i % 50 = 7 AND NOT (r.id = :active AND i > :tasks * 3 / 4) THEN
                 CASE WHEN i % 100 = 7 THEN 'dependency_failed' ELSE 'upstream_error' END END,
       CASE WHEN i % 50 = 7 AND NOT (r.id = :active AND i > :tasks * 3 / 4) THEN 'made up' END,
       now() - make_interval(secs => CAST(:runs AS bigint) - r.id + 1), now()
FROM (SELECT id FROM runs WHERE id = :run) AS r,
     generate_series(1, :tasks) AS i
"""


# The statements every reading sent before the tally (main before issue #21's telemetry lane):
# the baseline, timed the same way.
_FULL_SCANS = (
    "SELECT stage, state, count(*) FROM tasks GROUP BY stage, state",
    "SELECT stage, min(created_at) FROM tasks WHERE state = 'queued' GROUP BY stage",
    "SELECT t.stage, m.name, a.name, t.error_type, count(*) FROM tasks AS t"
    " LEFT JOIN models AS m ON m.id = t.model_id LEFT JOIN annotators AS a"
    " ON a.id = t.annotator_id WHERE t.state = 'failed' GROUP BY 1, 2, 3, 4",
)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=250, help="finished runs of 4,000 tasks")
    parser.add_argument("--active", type=int, default=8000, help="tasks of the active run")
    parser.add_argument("--readings", type=int, default=21)
    return parser.parse_args()


async def fill(engine: AsyncEngine, runs: int, active_tasks: int) -> None:
    async with session_factory(engine).begin() as session:
        dataset = Dataset(name="bench", source="bench")
        models = [Model(name=m, display_name=m, position=i) for i, m in enumerate(MODELS)]
        judge = Annotator(name="judge-x", kind=AnnotatorKind.JUDGE)
        session.add_all([dataset, *models, judge])
        await session.flush()
        await session.execute(
            insert(Prompt),
            [
                {"dataset_id": dataset.id, "external_id": f"p{i}", "text": f"prompt {i}",
                 "normalised_text": f"prompt {i}"}
                for i in range(1000)
            ],
        )  # fmt: skip
        await session.execute(insert(Run), [{"dataset_id": dataset.id, "spec": {}}] * (runs + 1))
        ids = list(await session.scalars(select(Run.id).order_by(Run.id)))
        prompt0 = await session.scalar(select(func.min(Prompt.id)))
        # The bulk load's rows are made to match; checking 4 foreign keys a row would double it.
        await session.execute(text("SET LOCAL session_replication_role = replica"))
        for run_id in ids:
            tasks = active_tasks if run_id == ids[-1] else TASKS_PER_RUN
            values: dict[str, Any] = {"run": run_id, "tasks": tasks, "active": ids[-1]}
            values |= {"runs": len(ids), "model0": models[0].id, "judge": judge.id}
            values["prompt0"] = prompt0
            await session.execute(text(_FILL), values)
    vacuum = create_engine(engine.url, isolation_level="AUTOCOMMIT")
    async with vacuum.connect() as connection:
        await connection.exec_driver_sql("VACUUM ANALYZE")
    await vacuum.dispose()


async def readings(engine: AsyncEngine, times: int) -> tuple[list[float], TaskSnapshot]:
    """The readings' times, one tally kept across them (as the refresher keeps it), and the
    last snapshot."""
    sessions = session_factory(engine)
    tally = TaskTally()
    spent = []
    for _ in range(times):
        started = time.perf_counter()
        async with sessions() as session:
            snapshot = await telemetry.read_snapshot(session, tally)
        spent.append(time.perf_counter() - started)
    return spent, snapshot


async def full_scans(engine: AsyncEngine, times: int) -> list[float]:
    """The baseline: each reading's time when it counted the whole table."""
    spent = []
    for _ in range(times):
        started = time.perf_counter()
        async with session_factory(engine)() as session:
            for statement in _FULL_SCANS:
                (await session.execute(text(statement))).all()
        spent.append(time.perf_counter() - started)
    return spent


async def explain(engine: AsyncEngine) -> list[str]:
    """EXPLAIN (ANALYZE, BUFFERS) of each statement a steady reading sends (after a first)."""
    sessions = session_factory(engine)
    tally = TaskTally()
    sent: list[tuple[str, Sequence[Any]]] = []

    def catch(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        sent.append((statement, parameters))

    for listening in (False, True):
        if listening:
            event.listen(engine.sync_engine, "before_cursor_execute", catch)
        async with sessions() as session:
            await telemetry.read_snapshot(session, tally)
    event.remove(engine.sync_engine, "before_cursor_execute", catch)
    plans = []
    async with engine.connect() as connection:
        driver = (await connection.get_raw_connection()).driver_connection
        assert driver is not None
        for statement, parameters in sent:
            rows = await driver.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", *parameters)
            plans.append(statement + "\n" + "\n".join(r[0] for r in rows))
    return plans


async def main() -> None:
    args = _arguments()
    async with throwaway_postgres_database() as url:
        engine = create_engine(url)
        await upgrade_async(engine)
        started = time.perf_counter()
        await fill(engine, args.runs, args.active)
        total = args.runs * TASKS_PER_RUN + args.active
        print(f"filled {total:,} tasks in {time.perf_counter() - started:.1f} s")
        for plan in await explain(engine):
            print(plan, end="\n\n")
        baseline = await full_scans(engine, args.readings)
        print(
            f"before (three scans of the table): median {statistics.median(baseline) * 1000:.1f}"
            f" ms, max {max(baseline) * 1000:.1f} ms ({len(baseline)})"
        )
        spent, snapshot = await readings(engine, args.readings)
        later = spent[1:]
        print(f"first reading (counts every run) {spent[0] * 1000:.1f} ms")
        print(
            f"later readings: median {statistics.median(later) * 1000:.2f} ms,"
            f" max {max(later) * 1000:.2f} ms ({len(later)})"
        )
        print("counts", sorted(snapshot.counts.items()))
        await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
