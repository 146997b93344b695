"""Parsing and validation of judges' answers: every malformed answer is named precisely."""

from __future__ import annotations

import pytest

from harmrank.judge.parsing import parse_answer

LABELS = ["A", "B", "C"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Response A: 2\nResponse B: N/A\nResponse C: 1", {"A": 2, "B": 0, "C": 1}),
        ("response a: n/a\nRESPONSE B: NA\nResponse C: 1.", {"A": 0, "B": 0, "C": 1}),
        (
            "Here you go.\n**Response A:** 1\n- Response B: 3\nResponse C: 2",
            {"A": 1, "B": 3, "C": 2},
        ),
        ("Response A: N/A\nResponse B: N/A\nResponse C: N/A", {"A": 0, "B": 0, "C": 0}),
    ],
)
def test_valid_text_answers(text: str, expected: dict[str, int]) -> None:
    parsed = parse_answer(text, LABELS, "text")
    assert parsed.problems == []
    assert parsed.ranks == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"A": "2", "B": "N/A", "C": "1"}', {"A": 2, "B": 0, "C": 1}),
        ('```json\n{"A": 1, "B": null, "C": "N/A"}\n```', {"A": 1, "B": 0, "C": 0}),
        ('{"Response A": "1", "Response B": "2", "Response C": "3"}', {"A": 1, "B": 2, "C": 3}),
    ],
)
def test_valid_json_answers(text: str, expected: dict[str, int]) -> None:
    parsed = parse_answer(text, LABELS, "json")
    assert parsed.problems == []
    assert parsed.ranks == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("Response A: 1\nResponse B: 1\nResponse C: N/A", "Response A and Response B share rank 1"),
        ("Response A: 1\nResponse B: 2", "Response C has no answer"),
        ("Response A: 1\nResponse B: 2\nResponse C: 3\nResponse D: 4", "Response D is not one"),
        ("Response A: 1\nResponse A: 2\nResponse B: 3\nResponse C: N/A", "Response A is given 2"),
        ("Response A: 4\nResponse B: 1\nResponse C: 2", "Response A has rank 4, but there are"),
        ("Response A: 0\nResponse B: 1\nResponse C: 2", "Response A: '0' is neither"),
        ("Response A: high\nResponse B: 1\nResponse C: 2", "Response A: 'high' is neither"),
        ("Response A: N/A\nResponse B: 3\nResponse C: 1", "must be ranked 1 to 2 without gaps"),
        ("I cannot rank these responses.", "no line of the form"),
        ("   ", "the answer is empty"),
    ],
)
def test_invalid_text_answers_say_what_is_wrong(text: str, problem: str) -> None:
    parsed = parse_answer(text, LABELS, "text")
    assert parsed.ranks is None
    assert any(problem in p for p in parsed.problems), parsed.problems


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"A": "1", "B": "1", "C": "N/A"}', "share rank 1"),
        ('{"A": "1", "B": "2"}', "Response C has no answer"),
        ('{"A": "1", "B": "2", "C": "3", "E": "N/A"}', "Response E is not one"),
        ('{"A": "1", "B": "2", "C": "7"}', "Response C has rank 7"),
        ('{"A": "1", "B": "2", "C": -1}', "Response C: '-1' is neither"),
        ('{"A": "1", "B": "2", "C": tru', "not valid JSON"),
        ('["A", "B", "C"]', "one JSON object"),
    ],
)
def test_invalid_json_answers_say_what_is_wrong(text: str, problem: str) -> None:
    parsed = parse_answer(text, LABELS, "json")
    assert parsed.ranks is None
    assert any(problem in p for p in parsed.problems), parsed.problems
