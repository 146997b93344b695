"""The annotation tables: per-dataset settings, invitations, annotator sessions, assignments, flags.

A ranking made on the annotation page is an ordinary row of ``rankings`` (annotator kind human,
presentation_key ""); these tables hold who was invited, who is signed in, which items each
annotator was given, and what they skipped or flagged. Tokens are stored only as SHA-256
digests. The schema is made by migrations 0003 and 0006; these classes must match it.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from harmrank.gateway.db.base import (
    Base,
    BigIntPK,
    cascade_fk,
    created_timestamp,
    string_enum,
)


class AssignmentState(StrEnum):
    PENDING = "pending"
    DONE = "done"
    SKIPPED = "skipped"


class SamplingPolicy(StrEnum):
    UNIFORM = "uniform"
    ACTIVE = "active"


class FlagKind(StrEnum):
    FLAG = "flag"
    SKIP = "skip"


class AnnotationConfig(Base):
    """How many annotators (k) each item of the dataset goes to, the warning shown first, and
    which items go to humans at all: a label budget drawn by a policy (``annotation_draws``)."""

    __tablename__ = "annotation_configs"
    __table_args__ = (
        CheckConstraint("k >= 1", name="k_positive"),
        CheckConstraint("budget IS NULL OR budget >= 1", name="budget_positive"),
        CheckConstraint("floor > 0 AND floor <= 1", name="floor_share"),
    )

    dataset_id: Mapped[int] = mapped_column(BigIntPK, cascade_fk("datasets.id"), primary_key=True)
    k: Mapped[int] = mapped_column(Integer)
    content_warning: Mapped[str | None] = mapped_column(Text)
    budget: Mapped[int | None] = mapped_column(Integer)
    """Items to send to humans, in expectation; None: every item."""
    policy: Mapped[SamplingPolicy] = mapped_column(
        string_enum(SamplingPolicy, "policy"),
        default=SamplingPolicy.UNIFORM,
        server_default=SamplingPolicy.UNIFORM.value,
    )
    sample_seed: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    floor: Mapped[float] = mapped_column(Float, default=0.2, server_default="0.2")
    """Active policy: every item keeps at least this share of the uniform probability."""
    updated_at: Mapped[datetime] = created_timestamp()


class AnnotationInvitation(Base):
    """One invited annotator of one dataset; bound to an annotator at the first sign-in."""

    __tablename__ = "annotation_invitations"
    __table_args__ = (UniqueConstraint("dataset_id", "annotator_id"),)

    id: Mapped[int] = mapped_column(BigIntPK, Identity(), primary_key=True)
    dataset_id: Mapped[int] = mapped_column(BigIntPK, cascade_fk("datasets.id"), index=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str | None] = mapped_column(String(200))
    """The admin's note on whom the invitation is for; never shown to annotators."""
    seed: Mapped[int] = mapped_column(Integer)
    """Seeds the order of items and of each item's responses for this annotator."""
    annotator_id: Mapped[int | None] = mapped_column(BigIntPK, ForeignKey("annotators.id"))
    created_at: Mapped[datetime] = created_timestamp()
    signed_in_at: Mapped[datetime | None] = mapped_column()
    warning_accepted_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()


class AnnotationSession(Base):
    """A signed-in annotator: the cookie's token, stored as its digest."""

    __tablename__ = "annotation_sessions"

    id: Mapped[int] = mapped_column(BigIntPK, Identity(), primary_key=True)
    invitation_id: Mapped[int] = mapped_column(
        BigIntPK, cascade_fk("annotation_invitations.id"), index=True
    )
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = created_timestamp()
    expires_at: Mapped[datetime] = mapped_column()


class AnnotationAssignment(Base):
    """One item (prompt) given to one invited annotator; ``position`` orders their queue."""

    __tablename__ = "annotation_assignments"
    __table_args__ = (
        UniqueConstraint("invitation_id", "prompt_id"),
        # Progress per item and the planner's counts: a dataset's assignments by prompt.
        Index("ix_annotation_assignments_dataset_id_prompt_id", "dataset_id", "prompt_id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, Identity(), primary_key=True)
    dataset_id: Mapped[int] = mapped_column(BigIntPK, cascade_fk("datasets.id"))
    invitation_id: Mapped[int] = mapped_column(BigIntPK, cascade_fk("annotation_invitations.id"))
    prompt_id: Mapped[int] = mapped_column(BigIntPK, cascade_fk("prompts.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    state: Mapped[AssignmentState] = mapped_column(
        string_enum(AssignmentState, "state"), default=AssignmentState.PENDING
    )
    ranking_id: Mapped[int | None] = mapped_column(
        BigIntPK, ForeignKey("rankings.id", ondelete="SET NULL"), index=True
    )
    seconds: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = created_timestamp()
    finished_at: Mapped[datetime | None] = mapped_column()
    inclusion: Mapped[float | None] = mapped_column(Float)
    """The item's probability of being drawn for humans (None: no budget, every item)."""


class AnnotationDraw(Base):
    """One item's draw under the dataset's label budget: its probability and the outcome.

    Kept for every item, drawn or not: the estimator weights the items left to the judges by
    ``1 / (1 - probability)``, so their probabilities are needed as much as the drawn ones'.
    """

    __tablename__ = "annotation_draws"
    __table_args__ = (CheckConstraint("probability > 0 AND probability <= 1", name="probability"),)

    prompt_id: Mapped[int] = mapped_column(BigIntPK, cascade_fk("prompts.id"), primary_key=True)
    dataset_id: Mapped[int] = mapped_column(BigIntPK, cascade_fk("datasets.id"), index=True)
    probability: Mapped[float] = mapped_column(Float)
    selected: Mapped[bool] = mapped_column(Boolean)
    score: Mapped[float] = mapped_column(Float)
    """The judges' disagreement plus uncertainty the active policy used (0 under uniform)."""


class AnnotationFlag(Base):
    """An item an annotator flagged (with or without ranking it) or skipped, with their note."""

    __tablename__ = "annotation_flags"

    id: Mapped[int] = mapped_column(BigIntPK, Identity(), primary_key=True)
    assignment_id: Mapped[int] = mapped_column(
        BigIntPK, cascade_fk("annotation_assignments.id"), index=True
    )
    kind: Mapped[FlagKind] = mapped_column(string_enum(FlagKind, "kind"))
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = created_timestamp()
