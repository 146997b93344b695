"""The one pagination scheme of every paged listing: keyset pages behind opaque cursors.

A listing fetches one row more than its page (``limit + 1``): that row's presence says a next
page exists, and the cursor is the sort key of the last row shown, tagged with the listing it
belongs to so one listing's cursor is refused by another. Most listings are ordered by id alone,
so their key is that id; a listing ordered by something else keys on (its sort values..., id),
which stays a total order and resumes right after the last row even when rows come and go.
Every page answers ``{"items": [...], "next_cursor": ...}`` (:class:`Page`), and every bad
cursor is the same 422 (:class:`InvalidCursor`).
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Awaitable, Callable, Sequence
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

KeyPart = int | float
Key = tuple[KeyPart, ...]
"""A row's place in its listing's order: compared as a tuple, ascending."""
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


def encode_cursor(kind: str, *key: KeyPart) -> str:
    """The cursor after a row whose sort key is ``key`` (one id for most listings)."""
    parts = [repr(p) if isinstance(p, float) else str(p) for p in key]
    return base64.urlsafe_b64encode(":".join([kind, *parts]).encode()).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str | None) -> int | None:
    """The last id of the page before, from a cursor of the listing ``kind``; None: first page."""
    key = decode_key(kind, cursor, (int,))
    return None if key is None else int(key[0])


def decode_key(kind: str, cursor: str | None, parts: tuple[type[KeyPart], ...]) -> Key | None:
    """The sort key of the last row of the page before, its parts of the types ``parts``
    (ints are ids or positions: 0 to BIGINT's largest; floats are finite, written as
    :func:`encode_cursor` writes them); None: the first page."""
    if cursor is None or cursor == "":
        return None
    if len(cursor) > MAX_CURSOR:
        raise InvalidCursor()
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidCursor() from None
    tag, *written = raw.split(":")
    if tag != kind or len(written) != len(parts):
        raise InvalidCursor()
    return tuple(_key_part(text, part) for text, part in zip(written, parts, strict=True))


def _key_part(text: str, part: type[KeyPart]) -> KeyPart:
    if part is int:
        if not (text.isascii() and text.isdigit()) or int(text) > _MAX_ID:
            raise InvalidCursor()
        return int(text)
    try:
        number = float(text)
    except ValueError:
        raise InvalidCursor() from None
    # Only the one spelling the encoder writes: no "nan", "1_0", " 1" or "1" for "1.0".
    if not math.isfinite(number) or repr(number) != text:
        raise InvalidCursor()
    return number


def keyset_page(
    kind: str,
    rows: Sequence[Row],
    limit: int,
    last_id: Callable[[Row], int | Key] = attrgetter("id"),
) -> tuple[Sequence[Row], str | None]:
    """The rows of a page fetched with ``limit + 1``, and the cursor of the next (None: end).
    ``last_id`` gives a row's id, or its whole sort key for a listing not ordered by id."""
    shown = rows[:limit]
    if len(rows) <= limit:
        return shown, None
    key = last_id(shown[-1])
    return shown, encode_cursor(kind, *(key if isinstance(key, tuple) else (key,)))


async def fetch_page(
    kind: str,
    cursor: str | None,
    limit: int,
    fetch: Callable[[int | None, int], Awaitable[Sequence[Row]]],
    last_id: Callable[[Row], int] = attrgetter("id"),
) -> tuple[Sequence[Row], str | None]:
    """The rows of the page of listing ``kind`` after ``cursor``, and the next page's cursor;
    ``fetch(after, n)`` reads at most ``n`` rows in key order after the id ``after`` (None:
    from the first)."""
    rows = await fetch(decode_cursor(kind, cursor), limit + 1)
    return keyset_page(kind, rows, limit, last_id)
