"""Annotation: annotation_configs, annotation_invitations, annotation_sessions,
annotation_assignments, annotation_flags.

Revision ID: 0003
Revises: 0002
Create Date: 2025-07-01

Written by hand, types spelled out (see 0001). Rankings made on the annotation page go into the
existing ``rankings`` table; these tables hold invitations, sessions, assignments and flags.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
STATES = ("pending", "done", "skipped")
FLAG_KINDS = ("flag", "skip")


def id_column() -> sa.Column[int]:
    return sa.Column("id", BIGINT, sa.Identity(), primary_key=True)


def timestamp(name: str, *, nullable: bool = True) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def created_at_column(name: str = "created_at") -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False)


def one_of(column: str, values: Sequence[str], table: str) -> sa.CheckConstraint:
    listed = ", ".join(f"'{v}'" for v in values)
    return sa.CheckConstraint(f"{column} IN ({listed})", name=op.f(f"ck_{table}_{column}"))


def cascade_fk(column: str, table: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "annotation_configs",
        sa.Column("dataset_id", BIGINT, nullable=False),
        sa.Column("k", sa.Integer(), nullable=False),
        sa.Column("content_warning", sa.Text(), nullable=True),
        created_at_column("updated_at"),
        sa.PrimaryKeyConstraint("dataset_id", name=op.f("pk_annotation_configs")),
        cascade_fk("dataset_id", "annotation_configs", "datasets"),
        sa.CheckConstraint("k >= 1", name=op.f("ck_annotation_configs_k_positive")),
    )
    create_invitations()
    op.create_table(
        "annotation_sessions",
        id_column(),
        sa.Column("invitation_id", BIGINT, nullable=False),
        sa.Column("token_sha256", sa.String(64), nullable=False),
        created_at_column(),
        timestamp("expires_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_annotation_sessions")),
        cascade_fk("invitation_id", "annotation_sessions", "annotation_invitations"),
        sa.UniqueConstraint("token_sha256", name=op.f("uq_annotation_sessions_token_sha256")),
    )
    op.create_index(
        op.f("ix_annotation_sessions_invitation_id"), "annotation_sessions", ["invitation_id"]
    )
    create_assignments()
    op.create_table(
        "annotation_flags",
        id_column(),
        sa.Column("assignment_id", BIGINT, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        created_at_column(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_annotation_flags")),
        cascade_fk("assignment_id", "annotation_flags", "annotation_assignments"),
        one_of("kind", FLAG_KINDS, "annotation_flags"),
    )
    op.create_index(
        op.f("ix_annotation_flags_assignment_id"), "annotation_flags", ["assignment_id"]
    )


def create_invitations() -> None:
    op.create_table(
        "annotation_invitations",
        id_column(),
        sa.Column("dataset_id", BIGINT, nullable=False),
        sa.Column("token_sha256", sa.String(64), nullable=False),
        sa.Column("label", sa.String(200), nullable=True),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("annotator_id", BIGINT, nullable=True),
        created_at_column(),
        timestamp("signed_in_at"),
        timestamp("warning_accepted_at"),
        timestamp("revoked_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_annotation_invitations")),
        cascade_fk("dataset_id", "annotation_invitations", "datasets"),
        sa.ForeignKeyConstraint(
            ["annotator_id"],
            ["annotators.id"],
            name=op.f("fk_annotation_invitations_annotator_id_annotators"),
        ),
        sa.UniqueConstraint("token_sha256", name=op.f("uq_annotation_invitations_token_sha256")),
        sa.UniqueConstraint(
            "dataset_id",
            "annotator_id",
            name=op.f("uq_annotation_invitations_dataset_id_annotator_id"),
        ),
    )
    op.create_index(
        op.f("ix_annotation_invitations_dataset_id"), "annotation_invitations", ["dataset_id"]
    )


def create_assignments() -> None:
    table = "annotation_assignments"
    op.create_table(
        table,
        id_column(),
        sa.Column("dataset_id", BIGINT, nullable=False),
        sa.Column("invitation_id", BIGINT, nullable=False),
        sa.Column("prompt_id", BIGINT, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("ranking_id", BIGINT, nullable=True),
        sa.Column("seconds", sa.Float(), nullable=True),
        created_at_column(),
        timestamp("finished_at"),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
        cascade_fk("dataset_id", table, "datasets"),
        cascade_fk("invitation_id", table, "annotation_invitations"),
        cascade_fk("prompt_id", table, "prompts"),
        sa.ForeignKeyConstraint(
            ["ranking_id"],
            ["rankings.id"],
            name=op.f(f"fk_{table}_ranking_id_rankings"),
            ondelete="SET NULL",
        ),
        sa.UniqueConstraint(
            "invitation_id", "prompt_id", name=op.f(f"uq_{table}_invitation_id_prompt_id")
        ),
        one_of("state", STATES, table),
    )
    op.create_index(op.f(f"ix_{table}_dataset_id_prompt_id"), table, ["dataset_id", "prompt_id"])
    op.create_index(op.f(f"ix_{table}_prompt_id"), table, ["prompt_id"])
    op.create_index(op.f(f"ix_{table}_ranking_id"), table, ["ranking_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_annotation_flags_assignment_id"), table_name="annotation_flags")
    op.drop_table("annotation_flags")
    table = "annotation_assignments"
    op.drop_index(op.f(f"ix_{table}_ranking_id"), table_name=table)
    op.drop_index(op.f(f"ix_{table}_prompt_id"), table_name=table)
    op.drop_index(op.f(f"ix_{table}_dataset_id_prompt_id"), table_name=table)
    op.drop_table(table)
    op.drop_index(op.f("ix_annotation_sessions_invitation_id"), table_name="annotation_sessions")
    op.drop_table("annotation_sessions")
    op.drop_index(op.f("ix_annotation_invitations_dataset_id"), table_name="annotation_invitations")
    op.drop_table("annotation_invitations")
    op.drop_table("annotation_configs")
