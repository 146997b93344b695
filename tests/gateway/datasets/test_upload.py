"""Reading an uploaded prompt file: every problem is named by file, line and field."""

from __future__ import annotations

import json
import pickle

import pytest

from harmrank.gateway.datasets.problems import SENT_CHUNK, Problem
from harmrank.gateway.datasets.upload import ParsedUpload, UploadLimits, detect_format, parse_upload
from harmrank.gateway.study.importer import prompt_id

F = "prompts.jsonl"
C = "prompts.csv"


def jsonl(*objects: object) -> bytes:
    return "\n".join(json.dumps(o, ensure_ascii=False) for o in objects).encode()


def where(parsed: ParsedUpload, *, warnings: bool = False) -> list[tuple[int, str]]:
    found = parsed.warnings if warnings else parsed.errors
    return [(p.line, p.field) for p in found]


def test_a_clean_jsonl_file_gives_its_prompts() -> None:
    parsed = parse_upload(
        jsonl({"text": "a calm ask", "category": "c1", "id": "p1"}, {"text": "another"}), F, "jsonl"
    )
    assert parsed.ok
    assert parsed.warnings == ()
    first, second = parsed.records
    assert (first.external_id, first.text, first.category, first.line) == (
        "p1",
        "a calm ask",
        "c1",
        1,
    )
    # No id given: the stable hash of the normalised text, the same the study import uses.
    assert second.external_id == prompt_id("another") == prompt_id("  ANOTHER ")
    assert second.category is None


def test_a_clean_csv_file_gives_its_prompts() -> None:
    data = b'\xef\xbb\xbfText,Category,id\r\n"line one\r\nline two",c,7\r\nplain,,\r\n'
    parsed = parse_upload(data, C, "csv")
    assert parsed.ok, parsed.errors
    first, second = parsed.records
    assert first.text == "line one\r\nline two"  # a cell spanning lines, kept exactly
    assert (first.external_id, first.category, first.line) == ("7", "c", 2)
    assert (second.text, second.category, second.line) == ("plain", None, 4)


@pytest.mark.parametrize(
    ("data", "fmt", "expected"),
    [
        (jsonl({"category": "c"}), "jsonl", [(1, "text", "missing text")]),
        (b"text,category\n,c\n", "csv", [(2, "text", "empty text")]),
        (jsonl({"text": "  \t"}), "jsonl", [(1, "text", "empty text")]),
        (b"category\nc\n", "csv", [(1, "text", "missing text: the header has no 'text' column")]),
        (jsonl({"text": 5}), "jsonl", [(1, "text", "text must be a string, not a number")]),
        (
            jsonl({"text": "a"}, {"text": "b", "id": 3}, {"text": "c", "id": "3"}),
            "jsonl",
            [(3, "id", "duplicate id '3': first on line 2")],
        ),
        (
            jsonl({"text": "Same  Text"}, {"text": "same text "}),
            "jsonl",
            [(2, "text", "duplicate text: the same as line 1")],
        ),
        (
            b'{"text": "a"}\n{"text": "b",}\n',
            "jsonl",
            [(2, "", "bad JSON at column 14: Expecting property name enclosed in double quotes")],
        ),
        (b'["a"]\n', "jsonl", [(1, "", "expected a JSON object, got an array")]),
        (
            jsonl({"text": "a\u0000b"}),
            "jsonl",
            [(1, "text", "contains a NUL character at position 1")],
        ),
        (
            b'{"text": "a\\ud800"}',
            "jsonl",
            [(1, "text", "contains an unpaired surrogate at position 1")],
        ),
        (jsonl({"text": "a", "id": "  "}), "jsonl", [(1, "id", "blank id")]),
        (
            jsonl({"text": "a", "id": "x" * 129}),
            "jsonl",
            [(1, "id", "id is 129 characters, over 128")],
        ),
        (
            jsonl({"text": "a", "category": ["c"]}),
            "jsonl",
            [(1, "category", "category must be a string, not an array")],
        ),
        (
            b"text\na,b\n",
            "csv",
            [(2, "cell 2", "the row has 2 cells, the header 1: this cell has no column")],
        ),
        # A short row lost a value or a delimiter: an error too, naming the first missing column.
        (
            b"text,category,id\na,b\n",
            "csv",
            [
                (
                    2,
                    "id",
                    "the row has 2 cells, the header 3: this column and those after are missing",
                )
            ],
        ),
        # A quote never closed would swallow the rest of the file into one cell.
        (
            b'text,category\nfine,c\n"hello\nworld\n',
            "csv",
            [(3, "text", "unreadable CSV, the rest is not checked: unexpected end of data")],
        ),
        (
            b'text,category\nok,"c"x\n',
            "csv",
            [(2, "category", "unreadable CSV, the rest is not checked: ',' expected after '\"'")],
        ),
        # JSON the parser refuses past its limits: the line is named, never a 500.
        (
            b'{"text": "ok"}\n{"text": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
            "jsonl",
            [(2, "", "bad JSON: nested too deeply")],
        ),
        (
            b'{"text": "ok", "id": ' + b"7" * 5000 + b"}",
            "jsonl",
            [
                (
                    1,
                    "",
                    "bad JSON: Exceeds the limit (4300 digits) for integer string conversion:"
                    " value has 5000 digits",
                )
            ],
        ),
        (b"text,text\na,b\n", "csv", [(1, "text", "the column appears more than once")] * 2),
        (b"", "csv", [(1, "", "the file has no prompts")]),
        (b"\n\n", "jsonl", [(1, "", "the file has no prompts")]),
    ],
)
def test_each_problem_is_named(data: bytes, fmt: str, expected: list[tuple[int, str, str]]) -> None:
    name = C if fmt == "csv" else F
    parsed = parse_upload(data, name, fmt)  # type: ignore[arg-type]
    assert [(p.file, p.line, p.field, p.problem) for p in parsed.errors] == [
        (name, *e) for e in expected
    ]


def test_over_long_text_is_an_error_at_the_configured_limit() -> None:
    data = jsonl({"text": "x" * 10}, {"text": "y" * 11})
    parsed = parse_upload(data, F, "jsonl", UploadLimits(max_text_chars=10))
    assert parsed.errors == (Problem(F, 2, "text", "text is 11 characters, over the limit 10"),)


def test_bad_utf8_is_reported_with_its_byte_offset_and_line() -> None:
    data = b'{"text": "fine"}\n{"text": "caf\xe9"}\n{"text": "ok \xff\xfe"}\n'
    parsed = parse_upload(data, F, "jsonl")
    assert [(p.line, p.problem) for p in parsed.errors] == [
        (2, "invalid UTF-8 at byte offset 30 (byte 0xe9)"),
        (3, "invalid UTF-8 at byte offset 47 (byte 0xff)"),
        (3, "invalid UTF-8 at byte offset 48 (byte 0xfe)"),
    ]
    assert (data[30], data[47]) == (0xE9, 0xFF)


def test_unknown_fields_and_columns_are_warnings_not_errors() -> None:
    parsed = parse_upload(jsonl({"text": "a", "lang": "en"}, {"text": "b", "x": 1}), F, "jsonl")
    assert parsed.ok
    assert where(parsed, warnings=True) == [(1, "lang"), (2, "x")]
    parsed = parse_upload(b"text,Source\na,web\n", C, "csv")
    assert parsed.ok
    assert parsed.warnings == (Problem(C, 1, "Source", "unknown column, ignored"),)


def test_every_problem_of_a_file_is_listed_at_once() -> None:
    data = b'{"text": ""}\n{oops\n{"text": "a", "id": "1"}\n{"text": "b", "id": "1"}\n'
    parsed = parse_upload(data, F, "jsonl")
    assert where(parsed) == [(1, "text"), (2, ""), (4, "id")]
    assert not parsed.ok


def test_a_failed_file_keeps_no_prompts_but_still_finds_every_problem() -> None:
    # Rows after the first error are still checked (a duplicate of a row read after it too),
    # but none is kept: a large bad file would otherwise cost a record per row.
    data = jsonl({"text": ""}, {"text": "a"}, {"text": "b"}, {"text": "A "})
    parsed = parse_upload(data, F, "jsonl")
    assert parsed.records == ()
    assert [(p.line, p.problem) for p in parsed.errors] == [
        (1, "empty text"),
        (4, "duplicate text: the same as line 2"),
    ]
    assert parsed.error_total == 2


def test_text_is_kept_exactly_including_control_characters_and_any_unicode() -> None:
    text = " \u202eright-to-left\u2028line sep\x0b\x1b[31m\ttab\r\n😀 ﷽ \u0301 "
    parsed = parse_upload(jsonl({"text": text}), F, "jsonl")
    assert parsed.ok
    assert parsed.records[0].text == text
    # "\u2028" is a line break to str.splitlines, but not to JSON Lines.
    assert parsed.records[0].line == 1


def test_csv_text_with_a_carriage_return_inside_a_quoted_cell_is_kept() -> None:
    parsed = parse_upload(b'text\n"a\rb\x0cc"\n', C, "csv")
    assert parsed.ok
    assert parsed.records[0].text == "a\rb\x0cc"


@pytest.mark.parametrize(
    ("filename", "content_type", "data", "expected"),
    [
        ("p.csv", None, b"{", "csv"),
        ("p.JSONL", None, b"text", "jsonl"),
        ("p.ndjson", None, b"", "jsonl"),
        ("upload", "application/x-ndjson", b"", "jsonl"),
        ("upload", "text/csv; charset=utf-8", b"{", "csv"),
        ("upload", None, b'\xef\xbb\xbf  {"text": 1}', "jsonl"),
        ("upload", "application/octet-stream", b"text\n", "csv"),
    ],
)
def test_format_detection(
    filename: str, content_type: str | None, data: bytes, expected: str
) -> None:
    assert detect_format(filename, content_type, data) == expected


def test_a_parse_sent_from_its_worker_process_arrives_whole() -> None:
    # Pickled in chunks (SENT_CHUNK prompts each) so the gateway unpickles it in steps.
    rows = "".join(f"prompt {i}\n" for i in range(SENT_CHUNK * 2 + 1))
    parsed = parse_upload(f"text\n{rows}".encode(), "p.csv", "csv")
    received = pickle.loads(pickle.dumps(parsed))
    assert received == parsed
    assert len(received.records) == SENT_CHUNK * 2 + 1
    assert received.records[-1].line == SENT_CHUNK * 2 + 2
