"""Drop ix_tasks_state_stage_not_before: no statement reads it any more, and every task pays
for it.

It served the first claim, which filtered queued tasks by state, stage and backoff. The claim
has since walked the queued tasks in id order (``ix_tasks_queued_id``, migration 0009) and its
other conditions have their own indexes; in a whole run (``bench/platform_overhead.py``, 4,001
tasks) PostgreSQL read it once, for no row. Yet each task wrote it three times: at planning,
and on its claim and its settle, which change ``state`` and so update every index of the
table. Without it a 1,000-prompt run's tasks are inserted in about 87 ms instead of 102
(medians of 5).

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_tasks_state_stage_not_before", table_name="tasks")


def downgrade() -> None:
    op.create_index("ix_tasks_state_stage_not_before", "tasks", ["state", "stage", "not_before"])
