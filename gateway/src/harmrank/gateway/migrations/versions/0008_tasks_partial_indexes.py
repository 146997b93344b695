"""Two partial indexes on tasks, so that a run's claims and status cost what is pending or
failing, not the size of the run (or of the table).

``ix_tasks_pending_generate``: (run_id, prompt_id) of the generate tasks not yet succeeded. A
claim checks, for each judge task it considers, that no generate task of its prompt is still
pending. PostgreSQL answers that check by hashing every pending generate task once per claim;
without this index it found them by reading the whole tasks table, so each claim cost O(tasks
in the database): 29 ms at 60,000 tasks, and a 50,000-prompt run's judgments ran at a third of
its generations' rate. With it, the check reads only the generate tasks still pending.

``ix_tasks_failing``: (run_id) of the tasks with an error (failed, or queued for a retry). Every
read of a run's status groups them; without it that read scanned every task of the run (36 ms
of a 20,000-prompt run's, each time its page or ``run status --follow`` asked).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels = None
depends_on = None

# Spelled out, not imported: a migration keeps the schema of its day.
_PENDING_GENERATE = "stage = 'generate' AND state NOT IN ('done', 'reused')"
_FAILING = "error_type IS NOT NULL"


def upgrade() -> None:
    op.create_index(
        op.f("ix_tasks_pending_generate"),
        "tasks",
        ["run_id", "prompt_id"],
        postgresql_where=sa.text(_PENDING_GENERATE),
        sqlite_where=sa.text(_PENDING_GENERATE),
    )
    op.create_index(
        op.f("ix_tasks_failing"),
        "tasks",
        ["run_id"],
        postgresql_where=sa.text(_FAILING),
        sqlite_where=sa.text(_FAILING),
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_tasks_failing"), table_name="tasks")
    op.drop_index(op.f("ix_tasks_pending_generate"), table_name="tasks")
