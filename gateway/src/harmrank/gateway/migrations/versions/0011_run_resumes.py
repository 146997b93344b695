"""A run counts its resumes, so that the gateway's task metrics may keep a finished run's figures.

A run's finished tasks (done, failed, reused, cancelled) change state only when the run is
resumed: every other change of a task's state starts from queued or running. So once a run has
no queued or running task, its task counts stay what they are until ``resumes`` grows (or the
run is deleted), and the gateway's metrics refresher counts it once instead of on every reading
(``harmrank.gateway.task_tally``). A resume can queue tasks and see them finish between two
readings; the counter still tells.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("resumes", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("resumes")
