"""Annotation under a label budget: the policy in the settings, the draws, π per assignment.

``annotation_configs`` gets the label budget (null: every item, as before), the assignment
policy (uniform | active), the seed of the draws and the active policy's floor;
``annotation_draws`` holds, per item of the dataset, its inclusion probability and whether it was
drawn for humans; ``annotation_assignments.inclusion`` keeps π with each assignment.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels = None
depends_on = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
CONFIGS = "annotation_configs"
DRAWS = "annotation_draws"


def upgrade() -> None:
    with op.batch_alter_table(CONFIGS) as batch:
        batch.add_column(sa.Column("budget", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("policy", sa.String(16), server_default="uniform", nullable=False)
        )
        batch.add_column(sa.Column("sample_seed", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("floor", sa.Float(), server_default="0.2", nullable=False))
        batch.create_check_constraint(
            op.f("ck_annotation_configs_budget_positive"), "budget IS NULL OR budget >= 1"
        )
        batch.create_check_constraint(
            op.f("ck_annotation_configs_policy"), "policy IN ('uniform', 'active')"
        )
        batch.create_check_constraint(
            op.f("ck_annotation_configs_floor_share"), "floor > 0 AND floor <= 1"
        )
    with op.batch_alter_table("annotation_assignments") as batch:
        batch.add_column(sa.Column("inclusion", sa.Float(), nullable=True))
    op.create_table(
        DRAWS,
        sa.Column("prompt_id", BIGINT, nullable=False),
        sa.Column("dataset_id", BIGINT, nullable=False),
        sa.Column("probability", sa.Float(), nullable=False),
        sa.Column("selected", sa.Boolean(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("prompt_id", name=op.f(f"pk_{DRAWS}")),
        sa.ForeignKeyConstraint(
            ["prompt_id"],
            ["prompts.id"],
            name=op.f(f"fk_{DRAWS}_prompt_id_prompts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["datasets.id"],
            name=op.f(f"fk_{DRAWS}_dataset_id_datasets"),
            ondelete="CASCADE",
        ),
        sa.CheckConstraint(
            "probability > 0 AND probability <= 1", name=op.f(f"ck_{DRAWS}_probability")
        ),
    )
    op.create_index(op.f(f"ix_{DRAWS}_dataset_id"), DRAWS, ["dataset_id"])


def downgrade() -> None:
    op.drop_index(op.f(f"ix_{DRAWS}_dataset_id"), table_name=DRAWS)
    op.drop_table(DRAWS)
    with op.batch_alter_table("annotation_assignments") as batch:
        batch.drop_column("inclusion")
    with op.batch_alter_table(CONFIGS) as batch:
        batch.drop_constraint(op.f("ck_annotation_configs_floor_share"), type_="check")
        batch.drop_constraint(op.f("ck_annotation_configs_policy"), type_="check")
        batch.drop_constraint(op.f("ck_annotation_configs_budget_positive"), type_="check")
        batch.drop_column("floor")
        batch.drop_column("sample_seed")
        batch.drop_column("policy")
        batch.drop_column("budget")
