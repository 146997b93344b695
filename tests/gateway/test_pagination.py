"""The one pagination scheme: opaque tagged cursors, one error for a bad one, one page shape."""

from __future__ import annotations

import base64
from dataclasses import dataclass

import pytest

from harmrank.common.errors import InvalidInput
from harmrank.gateway.pagination import (
    MAX_CURSOR,
    InvalidCursor,
    Page,
    decode_cursor,
    decode_key,
    encode_cursor,
    keyset_page,
)


@dataclass(frozen=True)
class Keyed:
    id: int


def test_a_cursor_is_the_last_id_tagged_with_its_listing() -> None:
    cursor = encode_cursor("r", 42)
    # Written out by hand: base64url of "r:42" is "cjo0Mg==", sent without its padding.
    assert cursor == "cjo0Mg"
    assert decode_cursor("r", cursor) == 42
    assert decode_cursor("r", None) is None
    assert decode_cursor("r", "") is None
    assert decode_cursor("u", encode_cursor("u", 2**63 - 1)) == 2**63 - 1


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!",  # not base64
        "42",  # a bare id, what the runs listing once gave out
        _b64("k:42"),  # another listing's
        _b64("r:-1"),
        _b64("r:4x"),
        _b64("r:٣"),  # a digit, but not an ASCII one
        _b64(f"r:{2**63}"),  # past BIGINT: would overflow in the driver
        _b64("r:" + "1" * MAX_CURSOR),  # too long to be one
        base64.urlsafe_b64encode(b"r:\xff").decode(),  # not UTF-8
    ],
)
def test_every_bad_cursor_is_one_422_naming_the_parameter(cursor: str) -> None:
    with pytest.raises(InvalidCursor) as raised:
        decode_cursor("r", cursor)
    error = raised.value
    assert isinstance(error, InvalidInput)
    assert (error.status_code, error.error_type) == (422, "invalid_cursor")
    assert error.message.startswith("query.cursor: ")
    assert error.details == [
        {"loc": ["query", "cursor"], "msg": error.message.removeprefix("query.cursor: "),
         "type": "invalid_cursor"}
    ]  # fmt: skip


def test_a_listing_not_ordered_by_id_keys_its_cursor_on_its_sort_values_and_the_id() -> None:
    parts = (float, int, int)
    for key in [(-0.6, 3, 17), (-0.0, 0, 1), (-1 / 3, 2**63 - 1, 5), (1e-05, 1, 1)]:
        assert decode_key("x", encode_cursor("x", *key), parts) == key
    assert decode_key("x", None, parts) is None
    # An id-keyed cursor is the one-part case of the same format.
    assert decode_key("r", encode_cursor("r", 42), (int,)) == (42,)


@pytest.mark.parametrize(
    "raw",
    [
        "x:0.5:1",  # a part missing
        "x:0.5:1:2:3",  # a part too many
        "x:nan:1:2",
        "x:inf:1:2",
        "x:1:1:2",  # not how the encoder writes 1.0
        "x:1_0.0:1:2",
        "x: 0.5:1:2",
        "x:0.5:-1:2",
        "x:0.5:1:2.0",
        "y:0.5:1:2",
    ],
)
def test_a_composite_cursor_is_refused_unless_written_as_the_encoder_writes_it(raw: str) -> None:
    with pytest.raises(InvalidCursor):
        decode_key("x", _b64(raw), (float, int, int))


def test_a_page_fetched_with_one_row_more_says_where_the_next_starts() -> None:
    rows = [Keyed(3), Keyed(5), Keyed(8)]
    shown, cursor = keyset_page("d", rows, 2)
    assert (list(shown), decode_cursor("d", cursor)) == ([Keyed(3), Keyed(5)], 5)
    assert keyset_page("d", rows, 3) == (rows, None)
    assert keyset_page("d", [], 3) == ([], None)
    pairs = [(Keyed(7), "a"), (Keyed(9), "b")]
    first, after = keyset_page("t", pairs, 1, lambda pair: pair[0].id)
    assert (list(first), decode_cursor("t", after)) == ([(Keyed(7), "a")], 7)
    _, after = keyset_page("s", pairs, 1, lambda pair: (0.5, pair[0].id))
    assert decode_key("s", after, (float, int)) == (0.5, 7)


def test_every_page_has_the_same_two_fields() -> None:
    assert list(Page[int].model_fields) == ["items", "next_cursor"]
    assert Page[int](items=[1], next_cursor=None).model_dump() == {
        "items": [1],
        "next_cursor": None,
    }
