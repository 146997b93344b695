"""Reading human-ranking files: the study's CSV layout and its notation quirks, and JSONL."""

from __future__ import annotations

import csv
import io
import json
import pickle

import pytest

from harmrank.gateway.datasets.problems import SENT_CHUNK
from harmrank.gateway.rankings_import.parse import (
    ParsedRankings,
    match_model_columns,
    parse_rankings,
)

MODELS = ("mistral-7b", "mpt-7b", "stablelm-alpha-7b")
HEADER = ("Prompt", "Model 1 - Mistral-7B", "Model 2 - MPT-7B", "Model 3 - StableLM", "Ranking")


def study_csv(*rows: tuple[str, ...], header: tuple[str, ...] = HEADER) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows([header, *rows])
    return out.getvalue().encode()


def row(prompt: str, ranking: str) -> tuple[str, ...]:
    return (prompt, "resp a", "resp b", "resp c", ranking)


def jsonl(*objects: object) -> bytes:
    return "\n".join(json.dumps(o) for o in objects).encode()


def problems(parsed: ParsedRankings) -> list[tuple[int, str, str]]:
    return [(p.line, p.field, p.problem) for p in parsed.errors]


def test_the_study_notation_quirks_are_read_and_normalised_with_a_record() -> None:
    data = study_csv(
        row("ask one", "3,2,1"),
        row("ask two", "N/A,3,N/A"),  # not restarted after an N/A
        row("ask three", "[1, 2, 3]"),
        row("ask four", '"NA,2,1,"'),
    )
    parsed = parse_rankings(data, "g.csv", "csv", MODELS, annotator="group_x")
    assert parsed.errors == ()
    got = [(e.line, e.annotator, e.prompt_text, e.raw_value, e.ranks) for e in parsed.records]
    assert got == [
        (2, "group_x", "ask one", "3,2,1", (3, 2, 1)),
        (3, "group_x", "ask two", "N/A,3,N/A", (0, 1, 0)),
        (4, "group_x", "ask three", "[1, 2, 3]", (1, 2, 3)),
        (5, "group_x", "ask four", '"NA,2,1,"', (0, 2, 1)),
    ]
    assert parsed.records[0].normalisations == ()
    assert parsed.records[1].normalisations == (
        {"kind": "restarted_ranks", "raw": "N/A,3,N/A", "normalised": "N/A,1,N/A"},
    )
    assert [n["kind"] for n in parsed.records[3].normalisations] == [
        "notation_quotes",
        "notation_trailing_comma",
        "notation_na_spelling",
    ]
    assert parsed.records[0].responses == ("resp a", "resp b", "resp c")


def test_csv_problems_name_line_and_column() -> None:
    data = study_csv(
        row("ask one", "1,1,N/A"),
        row("ask two", "1,2"),
        row("ask three", "x,1,2"),
        row("  ", "1,2,3"),
        row("ask five", ""),
    )
    parsed = parse_rankings(data, "g.csv", "csv", MODELS, annotator="g")
    assert problems(parsed) == [
        (2, "Ranking", "ties are not allowed in 1,1,N/A"),
        (3, "Ranking", "expected 3 ranks, got 2 in '1,2'"),
        (4, "Ranking", "cannot read 'x' as a rank or N/A in 'x,1,2'"),
        (5, "Prompt", "empty prompt"),
        (6, "Ranking", "the ranking is empty in ''"),
    ]
    assert parsed.records == ()


def test_csv_needs_an_annotator_from_a_column_or_the_form() -> None:
    data = study_csv(row("ask", "1,2,3"))
    assert problems(parse_rankings(data, "g.csv", "csv", MODELS)) == [
        (2, "annotator", "no annotator: add the column or the form field")
    ]
    with_column = study_csv(
        ("ask", "a", "b", "c", "1,2,3", "group_7"), header=(*HEADER, "Annotator")
    )
    parsed = parse_rankings(with_column, "g.csv", "csv", MODELS, annotator="ignored")
    assert [e.annotator for e in parsed.records] == ["group_7"]


def test_csv_header_problems() -> None:
    no_ranking = study_csv(("ask", "a", "b", "c"), header=HEADER[:4])
    assert (1, "ranking", "missing the Ranking column") in problems(
        parse_rankings(no_ranking, "g.csv", "csv", MODELS, "g")
    )
    two_models = study_csv(("ask", "a", "b", "1,2"), header=(*HEADER[:3], "Ranking"))
    assert problems(parse_rankings(two_models, "g.csv", "csv", MODELS, "g")) == [
        (1, "", "expected one response column per model (mistral-7b, mpt-7b, stablelm-alpha-7b)")
    ]


def test_response_columns_are_matched_by_model_name_else_by_position() -> None:
    shuffled = ["StableLM out", "Mistral out", "MPT out"]
    assert match_model_columns(MODELS, shuffled) == {
        "mistral-7b": "Mistral out",
        "mpt-7b": "MPT out",
        "stablelm-alpha-7b": "StableLM out",
    }
    assert match_model_columns(MODELS, ["r1", "r2", "r3"]) == dict(
        zip(MODELS, ["r1", "r2", "r3"], strict=True)
    )
    assert match_model_columns(MODELS, ["r1", "r2"]) is None


def test_jsonl_entries_by_id_or_text_with_ranks_or_notation() -> None:
    data = jsonl(
        {"annotator": "ann", "prompt_id": "p1", "ranks": [3, 2, 1]},
        {"annotator": "ann", "prompt": "Some Text", "ranking": "N/A,3,N/A"},
        {"prompt_id": "p2", "ranks": [0, 0, 0], "note": "x"},
    )
    parsed = parse_rankings(data, "r.jsonl", "jsonl", MODELS, annotator="default")
    assert parsed.errors == ()
    got = [(e.annotator, e.prompt_id, e.prompt_text, e.raw_value, e.ranks) for e in parsed.records]
    assert got == [
        ("ann", "p1", None, "[3, 2, 1]", (3, 2, 1)),
        ("ann", None, "Some Text", "N/A,3,N/A", (0, 1, 0)),
        ("default", "p2", None, "[0, 0, 0]", (0, 0, 0)),
    ]
    assert [(w.line, w.field) for w in parsed.warnings] == [(3, "note")]


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (
            {"annotator": "a", "prompt_id": "p", "ranks": [3, 1, 0]},
            (1, "ranks", "harmful ranks must be 1..2 without gaps in 3,1,N/A"),
        ),
        (
            {"annotator": "a", "prompt_id": "p", "ranks": [1, 2]},
            (1, "ranks", "expected 3 ranks, got 2 in 1,2"),
        ),
        (
            {"annotator": "a", "prompt_id": "p", "ranks": [2, 2, 1]},
            (1, "ranks", "ties are not allowed in 2,2,1"),
        ),
        (
            {"annotator": "a", "prompt_id": "p", "ranks": [1, True, 0]},
            (1, "ranks", "ranks must be a list of integers (0 = N/A)"),
        ),
        (
            {"annotator": "a", "prompt_id": "p", "ranking": 3},
            (1, "ranking", "ranking must be a string, not a number"),
        ),
        (
            {"annotator": "a", "prompt_id": "p"},
            (1, "ranks", "give one of ranks or ranking, not neither"),
        ),
        (
            {"annotator": "a", "prompt_id": "p", "prompt": "t", "ranks": [1, 2, 3]},
            (1, "prompt_id", "give one of prompt_id or prompt, not both"),
        ),
        ({"prompt_id": "p", "ranks": [1, 2, 3]}, (1, "annotator", "missing annotator")),
        (
            {"annotator": "", "prompt_id": "p", "ranks": [1, 2, 3]},
            (1, "annotator", "annotator must be a non-empty string"),
        ),
    ],
)
def test_jsonl_problems_name_line_and_field(
    obj: dict[str, object], expected: tuple[int, str, str]
) -> None:
    parsed = parse_rankings(jsonl(obj), "r.jsonl", "jsonl", MODELS)
    assert problems(parsed) == [expected]
    assert parsed.records == ()


def test_bad_json_names_its_column() -> None:
    parsed = parse_rankings(b'{"annotator": "a",, }\n', "r.jsonl", "jsonl", MODELS)
    assert problems(parsed) == [
        (1, "", "bad JSON at column 19: Expecting property name enclosed in double quotes")
    ]


def test_a_parse_sent_from_its_worker_process_arrives_whole() -> None:
    # Pickled in chunks of SENT_CHUNK entries, as an upload's prompts, with every field kept.
    lines = [
        {"annotator": f"a{i % 3}", "prompt_id": f"p{i}", "ranking": "N/A,3,N/A"}
        for i in range(SENT_CHUNK * 2 + 1)
    ]
    parsed = parse_rankings(jsonl(*lines), "r.jsonl", "jsonl", MODELS)
    received = pickle.loads(pickle.dumps(parsed))
    assert received == parsed
    assert len(received.records) == SENT_CHUNK * 2 + 1
    last = received.records[-1]
    assert (last.line, last.prompt_id, last.ranks) == (len(lines), f"p{len(lines) - 1}", (0, 1, 0))
    assert last.normalisations[0]["kind"] == "restarted_ranks"
