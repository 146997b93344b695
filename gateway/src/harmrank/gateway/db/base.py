"""The declarative base, its naming convention, and the column types and helpers every table
shares."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import JSON, BigInteger, DateTime, Enum, ForeignKey, Integer, MetaData, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# Constraint names are part of the schema: migrations refer to them by name, so they must be
# deterministic and the same on every backend.
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# JSONB on PostgreSQL (indexable, compact); SQLite's JSON elsewhere. Python None is SQL NULL,
# not the JSON value null, so "IS NULL" finds it and NOT NULL columns reject it.
JSONType = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")

# SQLite only makes an INTEGER PRIMARY KEY an alias of the auto-incrementing rowid.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")


def utc_now() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware timestamp on every backend; SQLite would silently drop the offset."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given for a timezone-aware column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None or value.tzinfo is not None:
            return value
        # SQLite returns what it stored: UTC without an offset.
        return value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime()}


def string_enum(enum: type[StrEnum], name: str) -> Enum:
    """A VARCHAR with a CHECK rather than a native ENUM type: adding a member later is then an
    ordinary constraint change, on PostgreSQL and SQLite alike."""
    return Enum(
        enum,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        values_callable=lambda members: [m.value for m in members],
    )


def cascade_fk(target: str) -> ForeignKey:
    """A foreign key whose rows go when the row they point at goes."""
    return ForeignKey(target, ondelete="CASCADE")


def created_timestamp() -> Mapped[datetime]:
    """A timestamp set on insert, by Python or, for rows inserted by SQL, by the database."""
    return mapped_column(default=utc_now, server_default=func.now())
