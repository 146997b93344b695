"""Job records: runs, run_prompts, tasks, idempotency_keys, run_reports.

Revision ID: 0002
Revises: 0001
Create Date: 2025-06-24

Written by hand, types spelled out (see 0001). A run's status is not a column: it is derived
from its tasks.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
STAGES = ("generate", "judge", "score")
STATES = ("queued", "running", "done", "failed", "reused", "cancelled")


def id_column() -> sa.Column[int]:
    return sa.Column("id", BIGINT, sa.Identity(), primary_key=True)


def timestamp(name: str, *, nullable: bool = True) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def created_at_column() -> sa.Column[datetime]:
    return sa.Column(
        "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
    )


def one_of(column: str, values: Sequence[str], table: str) -> sa.CheckConstraint:
    listed = ", ".join(f"'{v}'" for v in values)
    return sa.CheckConstraint(f"{column} IN ({listed})", name=op.f(f"ck_{table}_{column}"))


def cascade_fk(column: str, table: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "runs",
        id_column(),
        sa.Column("dataset_id", BIGINT, nullable=False),
        sa.Column("spec", JSON, nullable=False),
        created_at_column(),
        timestamp("cancelled_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
        cascade_fk("dataset_id", "runs", "datasets"),
    )
    op.create_index(op.f("ix_runs_dataset_id"), "runs", ["dataset_id"])
    op.create_table(
        "run_prompts",
        sa.Column("run_id", BIGINT, nullable=False),
        sa.Column("prompt_id", BIGINT, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "prompt_id", name=op.f("pk_run_prompts")),
        cascade_fk("run_id", "run_prompts", "runs"),
        cascade_fk("prompt_id", "run_prompts", "prompts"),
    )
    op.create_index(op.f("ix_run_prompts_prompt_id"), "run_prompts", ["prompt_id"])
    create_tasks()
    op.create_table(
        "idempotency_keys",
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("request_sha256", sa.String(64), nullable=False),
        sa.Column("run_id", BIGINT, nullable=False),
        created_at_column(),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_idempotency_keys")),
        cascade_fk("run_id", "idempotency_keys", "runs"),
    )
    op.create_index(op.f("ix_idempotency_keys_run_id"), "idempotency_keys", ["run_id"])
    op.create_table(
        "run_reports",
        sa.Column("run_id", BIGINT, nullable=False),
        sa.Column("report", JSON, nullable=False),
        created_at_column(),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_run_reports")),
        cascade_fk("run_id", "run_reports", "runs"),
    )


def create_tasks() -> None:
    op.create_table(
        "tasks",
        id_column(),
        sa.Column("run_id", BIGINT, nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("prompt_id", BIGINT, nullable=True),
        sa.Column("model_id", BIGINT, nullable=True),
        sa.Column("generation_key", sa.String(64), nullable=True),
        sa.Column("annotator_id", BIGINT, nullable=True),
        sa.Column("presentation_key", sa.String(64), nullable=True),
        sa.Column("order_index", sa.Integer(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        timestamp("not_before"),
        sa.Column("lease_owner", sa.String(200), nullable=True),
        timestamp("lease_expires_at"),
        sa.Column("error_type", sa.String(64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("result", JSON, nullable=True),
        created_at_column(),
        timestamp("started_at"),
        timestamp("finished_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks")),
        cascade_fk("run_id", "tasks", "runs"),
        cascade_fk("prompt_id", "tasks", "prompts"),
        sa.ForeignKeyConstraint(["model_id"], ["models.id"], name=op.f("fk_tasks_model_id_models")),
        sa.ForeignKeyConstraint(
            ["annotator_id"], ["annotators.id"], name=op.f("fk_tasks_annotator_id_annotators")
        ),
        # Leading with run_id, it also serves the run's cascade.
        sa.UniqueConstraint("run_id", "key", name=op.f("uq_tasks_run_id_key")),
        one_of("stage", STAGES, "tasks"),
        one_of("state", STATES, "tasks"),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_tasks_attempts_not_negative")),
    )
    # The claim query: ready tasks by state and stage, not before their backoff ends.
    op.create_index(
        op.f("ix_tasks_state_stage_not_before"), "tasks", ["state", "stage", "not_before"]
    )
    # Readiness and progress: the tasks of one run by stage and state.
    op.create_index(op.f("ix_tasks_run_id_stage_state"), "tasks", ["run_id", "stage", "state"])
    op.create_index(op.f("ix_tasks_prompt_id"), "tasks", ["prompt_id"])


def downgrade() -> None:
    op.drop_table("run_reports")
    op.drop_index(op.f("ix_idempotency_keys_run_id"), table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
    op.drop_index(op.f("ix_tasks_prompt_id"), table_name="tasks")
    op.drop_index(op.f("ix_tasks_run_id_stage_state"), table_name="tasks")
    op.drop_index(op.f("ix_tasks_state_stage_not_before"), table_name="tasks")
    op.drop_table("tasks")
    op.drop_index(op.f("ix_run_prompts_prompt_id"), table_name="run_prompts")
    op.drop_table("run_prompts")
    op.drop_index(op.f("ix_runs_dataset_id"), table_name="runs")
    op.drop_table("runs")
