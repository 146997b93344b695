"""Result schema: datasets, prompts, models, responses, annotators, rankings, exclusions.

Revision ID: 0001
Revises:
Create Date: 2025-06-20

Written by hand. Types are spelled out here rather than imported from the models, so this
revision keeps meaning what it meant when the models change.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# JSONB on PostgreSQL, JSON on SQLite.
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
# BIGINT identity on PostgreSQL; SQLite auto-increments only an INTEGER PRIMARY KEY.
BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def id_column() -> sa.Column[int]:
    return sa.Column("id", BIGINT, sa.Identity(), primary_key=True)


def created_at_column() -> sa.Column[datetime]:
    return sa.Column(
        "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "datasets",
        id_column(),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("source_sha256", sa.String(64), nullable=True),
        created_at_column(),
        sa.Column("import_report", JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_datasets")),
        sa.UniqueConstraint("name", name=op.f("uq_datasets_name")),
    )
    op.create_table(
        "models",
        id_column(),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_models")),
        sa.UniqueConstraint("name", name=op.f("uq_models_name")),
        sa.UniqueConstraint("position", name=op.f("uq_models_position")),
    )
    op.create_table(
        "annotators",
        id_column(),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("details", JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_annotators")),
        sa.UniqueConstraint("name", name=op.f("uq_annotators_name")),
        sa.CheckConstraint(
            "kind IN ('human', 'expert', 'judge', 'aggregate')", name=op.f("ck_annotators_kind")
        ),
    )
    op.create_table(
        "prompts",
        id_column(),
        sa.Column("dataset_id", BIGINT, nullable=False),
        sa.Column("external_id", sa.String(128), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("normalised_text", sa.Text(), nullable=False),
        sa.Column("category", sa.String(100), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prompts")),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["datasets.id"],
            name=op.f("fk_prompts_dataset_id_datasets"),
            ondelete="CASCADE",
        ),
        # Leads with dataset_id, so it also serves "prompts of a dataset" and the cascade.
        sa.UniqueConstraint(
            "dataset_id", "external_id", name=op.f("uq_prompts_dataset_id_external_id")
        ),
    )
    op.create_table(
        "responses",
        id_column(),
        sa.Column("prompt_id", BIGINT, nullable=False),
        sa.Column("model_id", BIGINT, nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("generation_key", sa.String(64), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        created_at_column(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_responses")),
        sa.ForeignKeyConstraint(
            ["prompt_id"],
            ["prompts.id"],
            name=op.f("fk_responses_prompt_id_prompts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["model_id"], ["models.id"], name=op.f("fk_responses_model_id_models")
        ),
        # The natural key; leading with prompt_id, it also serves "responses of a prompt".
        sa.UniqueConstraint(
            "prompt_id",
            "model_id",
            "generation_key",
            name=op.f("uq_responses_prompt_id_model_id_generation_key"),
        ),
    )
    op.create_index(op.f("ix_responses_model_id"), "responses", ["model_id"])
    op.create_table(
        "rankings",
        id_column(),
        sa.Column("annotator_id", BIGINT, nullable=False),
        sa.Column("prompt_id", BIGINT, nullable=False),
        sa.Column("ranks", JSON, nullable=False),
        sa.Column("raw_value", sa.Text(), nullable=False),
        sa.Column("normalisations", JSON, nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("presentation", JSON, nullable=True),
        sa.Column("presentation_key", sa.String(64), nullable=False),
        created_at_column(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rankings")),
        sa.ForeignKeyConstraint(
            ["annotator_id"], ["annotators.id"], name=op.f("fk_rankings_annotator_id_annotators")
        ),
        sa.ForeignKeyConstraint(
            ["prompt_id"],
            ["prompts.id"],
            name=op.f("fk_rankings_prompt_id_prompts"),
            ondelete="CASCADE",
        ),
        # The natural key.
        sa.UniqueConstraint(
            "annotator_id",
            "prompt_id",
            "presentation_key",
            name=op.f("uq_rankings_annotator_id_prompt_id_presentation_key"),
        ),
    )
    op.create_index(op.f("ix_rankings_prompt_id"), "rankings", ["prompt_id"])
    op.create_table(
        "exclusions",
        id_column(),
        sa.Column("dataset_id", BIGINT, nullable=False),
        sa.Column("source_file", sa.Text(), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("annotator", sa.String(100), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("raw_value", sa.Text(), nullable=False),
        created_at_column(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exclusions")),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["datasets.id"],
            name=op.f("fk_exclusions_dataset_id_datasets"),
            ondelete="CASCADE",
        ),
    )
    op.create_index(op.f("ix_exclusions_dataset_id"), "exclusions", ["dataset_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_exclusions_dataset_id"), table_name="exclusions")
    op.drop_table("exclusions")
    op.drop_index(op.f("ix_rankings_prompt_id"), table_name="rankings")
    op.drop_table("rankings")
    op.drop_index(op.f("ix_responses_model_id"), table_name="responses")
    op.drop_table("responses")
    op.drop_table("prompts")
    op.drop_table("annotators")
    op.drop_table("models")
    op.drop_table("datasets")
