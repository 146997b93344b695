"""The join key undoes the mojibake of the study's judge files, and changes nothing else."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from harmrank.gateway.study.importer import normalise_text, prompt_id, undo_mojibake

# Any character but the surrogates, which no encoding writes.
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)


@pytest.mark.parametrize(
    ("garbled", "meant"),
    [
        ("what\u00e2\u0080\u0099s", "what\u2019s"),  # UTF-8 read as latin-1
        ("what\u00e2\u20ac\u2122s", "what\u2019s"),  # UTF-8 read as Windows-1252
        ("caf\u00c3\u00a9", "caf\u00e9"),
        ("what\u2019s", "what\u2019s"),  # already right: left alone
        ("caf\u00e9", "caf\u00e9"),
        ("plain", "plain"),
    ],
)
def test_hand_cases(garbled: str, meant: str) -> None:
    assert undo_mojibake(garbled) == meant


def test_a_garbled_prompt_joins_the_prompt_it_garbles() -> None:
    meant = "What\u2019s the last thing   to go through"
    garbled = meant.encode().decode("latin-1")
    assert (
        normalise_text(garbled)
        == normalise_text(meant)
        == "what\u2019s the last thing to go through"
    )
    assert prompt_id(garbled) == prompt_id(meant)


@given(TEXT, st.sampled_from(["latin-1", "cp1252"]))
def test_mojibake_of_any_text_is_undone(text: str, legacy: str) -> None:
    # Text that itself reads as mojibake is "repaired" too: garbling it says nothing.
    assume(undo_mojibake(text) == text)
    try:
        garbled = text.encode().decode(legacy)
    except UnicodeDecodeError:
        assume(False)  # five bytes have no Windows-1252 character: no such mojibake exists
    assert undo_mojibake(garbled) == text


def _reads_as_mojibake(text: str) -> bool:
    for legacy in ("cp1252", "latin-1"):
        try:
            text.encode(legacy).decode("utf-8")
        except UnicodeError:
            continue
        return not text.isascii()
    return False


@given(TEXT)
def test_text_that_cannot_be_mojibake_is_left_alone(text: str) -> None:
    assume(not _reads_as_mojibake(text))
    assert undo_mojibake(text) == text
