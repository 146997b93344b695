"""The one pagination scheme of every paged listing: keyset pages behind opaque cursors.

A listing fetches one row more than its page (``limit + 1``): that row's presence says a next
page exists, and the cursor is the last id shown, tagged with the listing it belongs to so one
listing's cursor is refused by another. Every page answers ``{"items": [...], "next_cursor":
...}`` (:class:`Page`), and every bad cursor is the same 422 (:class:`InvalidCursor`).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import Annotated, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel, Field

from harmrank.common.errors import InvalidInput

MAX_PAGE = 1000
MAX_CURSOR = 200
# Ids are BIGINT: a larger number would overflow in the driver (a 500), not be a 422.
_MAX_ID = 2**63 - 1

Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Rows per page.")]
# Not bounded by the query's own validation: a cursor too long is refused as any other bad
# cursor (InvalidCursor), so a client meets one error for every cursor it should not send.
Cursor = Annotated[
    str | None,
    Query(
        description="The `next_cursor` of the previous page; omit for the first. Opaque: its "
        f"encoding may change (at most {MAX_CURSOR} characters)."
    ),
]

Item = TypeVar("Item")
Row = TypeVar("Row")


class Page(BaseModel, Generic[Item]):
    """A page of a listing; a listing with more to say about its rows subclasses it."""

    items: list[Item]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end."
    )


class InvalidCursor(InvalidInput):
    """A cursor no listing gave out, or another listing's: a 422 naming ``query.cursor``."""

    error_type = "invalid_cursor"

    def __init__(self) -> None:
        problem = "not a next_cursor this listing gave out"
        super().__init__(
            f"query.cursor: {problem}",
            details=[{"loc": ["query", "cursor"], "msg": problem, "type": self.error_type}],
        )


def encode_cursor(kind: str, last_id: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str | None) -> int | None:
    """The last id of the page before, from a cursor of the listing ``kind``; None: first page."""
    if cursor is None or cursor == "":
        return None
    if len(cursor) > MAX_CURSOR:
        raise InvalidCursor()
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidCursor() from None
    tag, _, number = raw.partition(":")
    if tag != kind or not (number.isascii() and number.isdigit()) or int(number) > _MAX_ID:
        raise InvalidCursor()
    return int(number)


def keyset_page(
    kind: str,
    rows: Sequence[Row],
    limit: int,
    last_id: Callable[[Row], int] = attrgetter("id"),
) -> tuple[Sequence[Row], str | None]:
    """The rows of a page fetched with ``limit + 1``, and the cursor of the next (None: end)."""
    shown = rows[:limit]
    more = len(rows) > limit
    return shown, encode_cursor(kind, last_id(shown[-1])) if more else None
