"""The result tables: datasets of prompts, small-model responses, and the rankings of them.

Every result row has a natural unique key, so an importer or a worker that retries inserts
nothing twice. The schema itself is made only by the Alembic migrations in
`harmrank.gateway.migrations`; these classes must match them (a test compares the two).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Enum,
    ForeignKey,
    Identity,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from harmrank.gateway.db.base import (
    Base,
    BigIntPK,
    JSONType,
    cascade_fk,
    created_timestamp,
)

STUDY_GENERATION_KEY = "study"
"""`Response.generation_key` of responses imported from the study rather than generated."""


class AnnotatorKind(StrEnum):
    HUMAN = "human"
    EXPERT = "expert"
    JUDGE = "judge"
    AGGREGATE = "aggregate"


# Children a parent owns: deleted with it, by the database's ON DELETE CASCADE where they are
# not loaded (passive_deletes), and never lazily loaded (async code must load explicitly).
_OWNED: dict[str, Any] = {"lazy": "raise", "cascade": "all, delete-orphan", "passive_deletes": True}


def _primary_key() -> Mapped[int]:
    return mapped_column(BigIntPK, Identity(), primary_key=True)


class Dataset(Base):
    __tablename__ = "datasets"

    id: Mapped[int] = _primary_key()
    name: Mapped[str] = mapped_column(String(200), unique=True)
    source: Mapped[str] = mapped_column(Text)
    """Where the data came from: a URL or path, with a commit where there is one."""
    source_sha256: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = created_timestamp()
    import_report: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)

    prompts: Mapped[list[Prompt]] = relationship(back_populates="dataset", **_OWNED)
    exclusions: Mapped[list[Exclusion]] = relationship(back_populates="dataset", **_OWNED)


class Prompt(Base):
    __tablename__ = "prompts"
    __table_args__ = (UniqueConstraint("dataset_id", "external_id"),)

    id: Mapped[int] = _primary_key()
    dataset_id: Mapped[int] = mapped_column(BigIntPK, cascade_fk("datasets.id"))
    external_id: Mapped[str] = mapped_column(String(128))
    """Stable within the dataset, e.g. a hash of the normalised text."""
    text: Mapped[str] = mapped_column(Text)
    normalised_text: Mapped[str] = mapped_column(Text)
    category: Mapped[str | None] = mapped_column(String(100))

    dataset: Mapped[Dataset] = relationship(back_populates="prompts", lazy="raise")
    responses: Mapped[list[Response]] = relationship(back_populates="prompt", **_OWNED)
    rankings: Mapped[list[Ranking]] = relationship(back_populates="prompt", **_OWNED)


class Model(Base):
    """A small model whose responses are ranked; `position` is its place in every rank list."""

    __tablename__ = "models"

    id: Mapped[int] = _primary_key()
    name: Mapped[str] = mapped_column(String(100), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer, unique=True)


class Response(Base):
    __tablename__ = "responses"
    # The unique index leads with prompt_id, so it also serves "responses of a prompt".
    __table_args__ = (UniqueConstraint("prompt_id", "model_id", "generation_key"),)

    id: Mapped[int] = _primary_key()
    prompt_id: Mapped[int] = mapped_column(BigIntPK, cascade_fk("prompts.id"))
    model_id: Mapped[int] = mapped_column(BigIntPK, ForeignKey("models.id"), index=True)
    text: Mapped[str] = mapped_column(Text)
    generation_key: Mapped[str] = mapped_column(String(64))
    """A hash of the generation settings; `STUDY_GENERATION_KEY` for imported responses."""
    source: Mapped[str] = mapped_column(Text)
    """`file:line` for imported rows, the run for generated ones."""
    created_at: Mapped[datetime] = created_timestamp()

    prompt: Mapped[Prompt] = relationship(back_populates="responses", lazy="raise")
    model: Mapped[Model] = relationship(lazy="raise")


class Annotator(Base):
    """Whoever ranked: a student group, the expert, an LLM judge, or an aggregate of them."""

    __tablename__ = "annotators"

    id: Mapped[int] = _primary_key()
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[AnnotatorKind] = mapped_column(
        Enum(
            AnnotatorKind,
            name="kind",
            native_enum=False,
            create_constraint=True,
            length=16,
            values_callable=lambda kinds: [kind.value for kind in kinds],
        )
    )
    details: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class Ranking(Base):
    __tablename__ = "rankings"
    __table_args__ = (UniqueConstraint("annotator_id", "prompt_id", "presentation_key"),)

    id: Mapped[int] = _primary_key()
    annotator_id: Mapped[int] = mapped_column(BigIntPK, ForeignKey("annotators.id"))
    prompt_id: Mapped[int] = mapped_column(BigIntPK, cascade_fk("prompts.id"), index=True)
    ranks: Mapped[list[int]] = mapped_column(JSONType)
    """One rank per model in canonical (`Model.position`) order; 0 = N/A, highest = most harmful."""
    raw_value: Mapped[str] = mapped_column(Text)
    """The notation as read, before any normalisation."""
    normalisations: Mapped[list[str]] = mapped_column(JSONType, default=list)
    """The kinds of normalisation applied to `raw_value` to get `ranks`, in order."""
    source: Mapped[str] = mapped_column(Text)
    presentation: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    """The order and labels the responses were shown in, when that was recorded."""
    presentation_key: Mapped[str] = mapped_column(String(64), default="")
    """Distinguishes rankings of one prompt shown in different orders; "" when not applicable."""
    created_at: Mapped[datetime] = created_timestamp()

    prompt: Mapped[Prompt] = relationship(back_populates="rankings", lazy="raise")
    annotator: Mapped[Annotator] = relationship(lazy="raise")


class Exclusion(Base):
    """A source row the importer dropped, and why."""

    __tablename__ = "exclusions"
    id: Mapped[int] = _primary_key()
    dataset_id: Mapped[int] = mapped_column(BigIntPK, cascade_fk("datasets.id"), index=True)
    source_file: Mapped[str] = mapped_column(Text)
    line: Mapped[int] = mapped_column(Integer)
    annotator: Mapped[str | None] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text)
    raw_value: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = created_timestamp()

    dataset: Mapped[Dataset] = relationship(back_populates="exclusions", lazy="raise")


# The job tables share this metadata; importing them here makes the metadata complete.
from harmrank.gateway.db import annotation_models as _annotation_models  # noqa: E402, F401
from harmrank.gateway.db import run_models as _run_models  # noqa: E402, F401
