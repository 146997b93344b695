from __future__ import annotations

import pytest

from harmrank.gateway.study.notation import parse_ranking


@pytest.mark.parametrize(
    ("raw", "ranks", "cleanups"),
    [
        ("1,2,3", (1, 2, 3), ()),
        ("2,1,0", (2, 1, 0), ()),  # the judges' extracted notation
        ('"3,2,1"', (3, 2, 1), ("quotes",)),
        ("[3, 2, N/A]", (3, 2, 0), ("brackets", "spaces")),
        ("NA,1,NA", (0, 1, 0), ("na_spelling",)),
        ("3,N/A,N/aA", (3, 0, 0), ("na_spelling",)),
        (" 1, N/A,N/A", (1, 0, 0), ("spaces",)),
        ("3,N/A,N/A,", (3, 0, 0), ("trailing_comma",)),
    ],
)
def test_readable_notations(raw: str, ranks: tuple[int, ...], cleanups: tuple[str, ...]) -> None:
    parsed = parse_ranking(raw)
    assert parsed.ok
    assert (parsed.raw, parsed.ranks, parsed.cleanups) == (raw, ranks, cleanups)


def test_canonical_text_spells_na() -> None:
    assert parse_ranking("[N/A, 3,2 ]").text == "N/A,3,2"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("N/A", "wrong_length"),
        ("1,2", "wrong_length"),
        ("", "empty_ranking"),
        ('" "', "empty_ranking"),
        ("1,x,2", "unparseable"),
        ("-1,-1,-1", "unparseable"),
    ],
)
def test_unreadable_notations_keep_raw_and_reason(raw: str, reason: str) -> None:
    parsed = parse_ranking(raw)
    assert not parsed.ok
    assert (parsed.raw, parsed.reason) == (raw, reason)
    assert parsed.problem
