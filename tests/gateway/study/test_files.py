from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from harmrank.gateway.study.files import canonical_header, read_table

# conftest's fixtures; importlib mode cannot import conftest, so the alias is repeated.
WriteCsv = Callable[..., Path]


def test_bom_header_is_matched_and_encoding_recorded(write_csv: WriteCsv) -> None:
    path = write_csv("a.csv", [("Prompt", "Ranking"), ("a calm ask", "1,2,3")], bom=True)
    table = read_table(path)
    assert table.encoding == "utf-8-sig"
    assert table.column("prompt") == "prompt"
    assert table.rows[0].get("prompt") == "a calm ask"


def test_latin1_file_falls_back_and_says_so(write_csv: WriteCsv) -> None:
    path = write_csv("a.csv", [("Prompt",), ("caf\u00e9 menu",)], encoding="latin-1")
    table = read_table(path)
    assert table.encoding == "latin-1"
    assert table.rows[0].get("prompt") == "caf\u00e9 menu"


def test_mac_roman_is_told_from_windows_1252_by_its_typography(write_csv: WriteCsv) -> None:
    text = "I don\u2019t know \u2014 \u201cmaybe\u201d\u2026"
    for encoding in ("mac_roman", "cp1252"):
        path = write_csv(f"{encoding}.csv", [("Prompt",), (text,)], encoding=encoding)
        table = read_table(path)
        assert (table.encoding, table.rows[0].get("prompt")) == (encoding, text)


def test_mostly_utf8_keeps_its_text_and_counts_what_it_replaced(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    # A Korean line, then an em dash that lost its last byte to a "?".
    path.write_bytes("Prompt\n\uc548\ub155 \uc138\uc0c1\n".encode() + b"a\xe2\x80?b\n")
    table = read_table(path)
    assert table.encoding == "utf-8 (1 invalid sequences replaced by U+FFFD)"
    assert [r.get("prompt") for r in table.rows] == ["\uc548\ub155 \uc138\uc0c1", "a\ufffd?b"]


def test_plain_utf8(write_csv: WriteCsv) -> None:
    path = write_csv("a.csv", [("Prompt",), ("caf\u00e9 menu",)])
    table = read_table(path)
    assert (table.encoding, table.rows[0].get("prompt")) == ("utf-8", "caf\u00e9 menu")


def test_index_columns_are_ignored_and_listed(write_csv: WriteCsv) -> None:
    path = write_csv("a.csv", [("", "Unnamed: 0", "Prompt"), ("0", "7", "a calm ask")])
    table = read_table(path)
    assert table.columns == ("prompt",)
    assert table.ignored_columns == ("", "Unnamed: 0")
    assert dict(table.rows[0].cells) == {"prompt": "a calm ask"}


def test_trailing_empty_column_is_ignored(write_csv: WriteCsv) -> None:
    path = write_csv("a.csv", [("Prompt", "Ranking", ""), ("a calm ask", "1,2,3", "")])
    table = read_table(path)
    assert table.columns == ("prompt", "ranking")
    assert table.ignored_columns == ("",)


def test_headers_match_tolerantly() -> None:
    assert canonical_header("\ufeffPrompt") == "prompt"
    assert canonical_header('"Ranking"') == "ranking"
    assert canonical_header(" Model 2  - MPT-7B ") == "model 2 - mpt-7b"


def test_word_lookup_does_not_mistake_prompt_for_mpt(write_csv: WriteCsv) -> None:
    path = write_csv("a.csv", [("Prompt", "Model 2 - MPT-7B"), ("a", "b")])
    assert read_table(path).column(word="mpt") == "model 2 - mpt-7b"


def test_multiline_cells_report_the_line_a_record_starts_on(write_csv: WriteCsv) -> None:
    rows = [("Prompt", "Ranking"), ("one\ntwo\nthree", "1,2,3"), ("four", "3,2,1"), ("five", "")]
    table = read_table(write_csv("a.csv", rows), "a.csv")
    assert [(r.file, r.line) for r in table.rows] == [("a.csv", 2), ("a.csv", 5), ("a.csv", 6)]
    assert table.rows[0].get("prompt") == "one\ntwo\nthree"
