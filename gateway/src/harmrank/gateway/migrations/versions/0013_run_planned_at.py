"""A run notes when its planning ended: ``runs.planned_at``, empty while its tasks are written.

On PostgreSQL a run is planned in two transactions (``harmrank.gateway.runs.planner``): its
head (the run, its prompt list and the tasks of its first prompts) is committed first, so that
workers start on those while the rest of its tasks is written. Until the second commits, the
run is not whole: its status must not call it finished, the metrics must count its tasks
again, and should its gateway die in between, a worker finishes the planning. Runs made before
this migration were planned in one transaction: they were whole when created.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("planned_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE runs SET planned_at = created_at")
    # The runs being planned, which every worker looks for now and then: a few, of many.
    where = sa.text("planned_at IS NULL")
    op.create_index("ix_runs_planning", "runs", ["id"], postgresql_where=where, sqlite_where=where)


def downgrade() -> None:
    op.drop_index("ix_runs_planning", table_name="runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("planned_at")
