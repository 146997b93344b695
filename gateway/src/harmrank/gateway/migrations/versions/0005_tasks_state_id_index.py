"""An index on tasks (state, id) for the claim query.

A claim takes the first claimable tasks of one state in id order; with this index it reads
them directly instead of re-reading every finished task ahead of them on each claim.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(op.f("ix_tasks_state_id"), "tasks", ["state", "id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_tasks_state_id"), table_name="tasks")
