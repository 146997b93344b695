"""A partial index on tasks: the run of each generate or judge task still to do (queued or
running), which a score task's readiness check reads.

A run's score task is ready when none of its generate or judge tasks is queued or running; a
claim checks that whenever its walk of the queued tasks reaches a score task, which with several
runs in flight is every claim (a run's score task has its highest id). PostgreSQL answered the
check by reading the tasks table until it met a task still to do: the statistics of a run's
planning (every task queued) made a scan look as good as an index. When the run's work was done
the scan read the whole table: a claim of 16 took 3.6 ms at 8,000 tasks, 40 ms at 108,000 and
260 ms at 308,000 (``bench/claim_readiness.py``). The check now walks this index from the run in
run order (see ``harmrank.gateway.runs.ready``), so it reads what is left of the run, whatever the
statistics.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels = None
depends_on = None

# Spelled out, not imported: a migration keeps the schema of its day.
_WORK_TO_DO = "stage IN ('generate', 'judge') AND state IN ('queued', 'running')"


def upgrade() -> None:
    op.create_index(
        op.f("ix_tasks_work_to_do"),
        "tasks",
        ["run_id"],
        postgresql_where=sa.text(_WORK_TO_DO),
        sqlite_where=sa.text(_WORK_TO_DO),
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_tasks_work_to_do"), table_name="tasks")
