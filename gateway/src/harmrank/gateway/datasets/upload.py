"""Read an uploaded prompt file (CSV or JSONL) into prompts and a validation report; no I/O.

Every problem names the file, the line and the field, so the uploader can fix the file without
guessing. Errors reject the whole upload; warnings ride along with the created dataset. Text is
kept exactly as given: only what the database cannot store (NUL, unpaired surrogates) or the
limits refuse is an error.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from harmrank.gateway.datasets.problems import Collector, Format, Parsed
from harmrank.gateway.study.importer import normalise_text, normalised_prompt_id

FIELDS = ("text", "category", "id")
# The widths of Prompt.external_id and Prompt.category: longer values would fail at insert.
MAX_ID_CHARS = 128
MAX_CATEGORY_CHARS = 100
MAX_ENCODING_ERRORS = 20
_BOM = b"\xef\xbb\xbf"
_JSONL_EXTENSIONS = (".jsonl", ".ndjson", ".json")
_JSONL_TYPES = ("application/x-ndjson", "application/jsonl", "application/json-lines")
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class UploadLimits:
    # The csv module refuses fields over 131072 characters, so a CSV cannot exceed that anyway.
    max_text_chars: int = 100_000


@dataclass(frozen=True)
class PromptRecord:
    external_id: str
    text: str
    normalised_text: str
    category: str | None
    line: int


ParsedUpload = Parsed[PromptRecord]


@dataclass(frozen=True)
class RawRow:
    """A record as read, before validation: its fields by canonical name."""

    line: int
    fields: dict[str, Any]


def detect_format(filename: str, content_type: str | None, data: bytes) -> Format:
    """The file's format: from its name, else its content type, else its first character."""
    name = filename.casefold()
    if name.endswith(".csv"):
        return "csv"
    if name.endswith(_JSONL_EXTENSIONS):
        return "jsonl"
    media = (content_type or "").split(";")[0].strip().casefold()
    if media in _JSONL_TYPES:
        return "jsonl"
    if media == "text/csv":
        return "csv"
    return "jsonl" if data.removeprefix(_BOM).lstrip().startswith(b"{") else "csv"


def parse_upload(
    data: bytes, filename: str, fmt: Format, limits: UploadLimits | None = None
) -> ParsedUpload:
    """Read and validate the whole file; never raises on bad content.

    One pass, row by row: once the file has an error its prompts are no longer kept (they
    would never be stored), only the keys the duplicate check needs, so a large bad file costs
    little memory and no prompts are sent back from the parsing process."""
    limits = limits or UploadLimits()
    found = Collector(filename)
    text = decode_utf8(data, found)
    rows = read_csv(text, found) if fmt == "csv" else read_jsonl(text, found)
    seen = _Seen(found)
    prompts: list[PromptRecord] = []
    any_rows = False
    for row in rows:
        any_rows = True
        prompt = prompt_from(row, found, limits, fmt)
        if prompt is not None and seen.first(prompt) and not found.error_total:
            prompts.append(prompt)
    if not any_rows and not found.errors:
        found.error(1, "", "the file has no prompts")
    errors = sorted(found.errors, key=lambda p: p.line)
    return Parsed(
        filename,
        fmt,
        () if errors else tuple(prompts),
        tuple(errors),
        tuple(found.warnings),
        found.error_total,
        found.warning_total,
    )


def decode_utf8(data: bytes, found: Collector) -> str:
    """The text, reporting every invalid byte sequence with its offset in the uploaded bytes.

    Invalid sequences are replaced so the rest of the file is still checked. Past
    ``MAX_ENCODING_ERRORS`` the file is plainly not UTF-8, and listing more would only cost.
    """
    start = len(_BOM) if data.startswith(_BOM) else 0
    offset, reported = start, 0
    while offset < len(data) and reported < MAX_ENCODING_ERRORS:
        try:
            data[offset:].decode("utf-8")
            break
        except UnicodeDecodeError as exc:
            bad = offset + exc.start
            line = data.count(b"\n", 0, bad) + 1
            found.error(line, "", f"invalid UTF-8 at byte offset {bad} (byte 0x{data[bad]:02x})")
            offset, reported = offset + exc.end, reported + 1
    return data[start:].decode("utf-8", errors="replace")


def read_csv(text: str, found: Collector) -> Iterator[RawRow]:
    """Rows of a CSV with a header row; unknown columns warned about once, at the header."""
    records = csv_records(text, found)
    header = next(records, None)
    if header is None:
        return
    columns = _csv_columns(header[1], found)
    if "text" not in columns:
        return  # reported once at the header, not again on every row
    for line, cells in records:
        check_width(line, cells, header[1], found)
        values = zip(columns, cells, strict=False)
        row = {name: cell for name, cell in values if name in FIELDS}
        if any(cell.strip() for cell in cells):
            yield RawRow(line, row)


def _csv_columns(header: list[str], found: Collector) -> list[str]:
    names = [_canonical(cell) for cell in header]
    for name, cell in zip(names, header, strict=True):
        if name not in FIELDS:
            found.warn(1, cell, "unknown column, ignored")
        elif names.count(name) > 1:
            found.error(1, name, "the column appears more than once")
    if "text" not in names:
        found.error(1, "text", "missing text: the header has no 'text' column")
    return names


def check_width(line: int, cells: list[str], header: list[str], found: Collector) -> None:
    """A row must have as many cells as the header: a short one lost a value or a delimiter,
    a long one has a value without a column; both are errors naming the first cell concerned."""
    if len(cells) == len(header) or not any(cell.strip() for cell in cells):
        return
    count = f"the row has {len(cells)} cells, the header {len(header)}"
    if len(cells) < len(header):
        found.error(line, header[len(cells)], f"{count}: this column and those after are missing")
    else:
        found.error(line, f"cell {len(header) + 1}", f"{count}: this cell has no column")


def _canonical(header: str) -> str:
    return header.replace("\ufeff", "").strip().casefold()


def csv_records(text: str, found: Collector) -> Iterator[tuple[int, list[str]]]:
    """Each record with the physical line it starts on; a cell may span lines.

    ``strict``: a quote that is never closed is an error, not a cell that swallows the rest
    of the file, and so is text after a closing quote."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    consumed = 0
    header: list[str] = []
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            # The reader's state after an error is undefined, so stop rather than guess.
            line, column = _csv_error_at(text, consumed, header)
            found.error(line, column, f"unreadable CSV, the rest is not checked: {exc}")
            return
        start, consumed = consumed + 1, reader.line_num
        if cells:
            header = header or cells
            yield start, cells


def _csv_error_at(text: str, consumed: int, header: list[str]) -> tuple[int, str]:
    """The line the bad record starts on and the column of its last cell read (the one with
    the stray or unclosed quote), read again leniently."""
    rest = io.StringIO(text, newline="")
    for _ in range(consumed):
        rest.readline()
    cells = next(csv.reader(rest), [])
    index = max(len(cells) - 1, 0)
    column = header[index] if index < len(header) else f"cell {index + 1}"
    return consumed + 1, column


def read_jsonl(text: str, found: Collector, fields: tuple[str, ...] = FIELDS) -> Iterator[RawRow]:
    """One JSON object per line, with only its ``fields``; blank lines are skipped.

    Lines are split on "\\n" alone: str.splitlines would also split on characters such as
    U+2028 that JSON allows unescaped inside a string.
    """
    for number, line in enumerate(text.split("\n"), start=1):
        body = line.removesuffix("\r")
        if not body.strip():
            continue
        value = _json_line(body, number, found)
        if value is _UNREADABLE:
            continue
        if not isinstance(value, dict):
            found.error(number, "", f"expected a JSON object, got {json_type(value)}")
            continue
        for name in value:
            if name not in fields:
                found.warn(number, name, "unknown field, ignored")
        yield RawRow(number, {k: v for k, v in value.items() if k in fields})


_UNREADABLE = object()


def _json_line(body: str, number: int, found: Collector) -> Any:
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        found.error(number, "", f"bad JSON at column {exc.colno}: {exc.msg}")
    except RecursionError:
        found.error(number, "", "bad JSON: nested too deeply")
    except ValueError as exc:  # an integer past Python's limit on digits
        found.error(number, "", f"bad JSON: {str(exc).split(';')[0]}")
    return _UNREADABLE


def prompt_from(
    row: RawRow, found: Collector, limits: UploadLimits, fmt: Format
) -> PromptRecord | None:
    """The row as a prompt, or None when any of its fields is in error."""
    before = found.error_total
    text = _text(row, found, limits)
    given_id = _optional(row, "id", MAX_ID_CHARS, found, fmt)
    category = _optional(row, "category", MAX_CATEGORY_CHARS, found, fmt)
    if text is None or found.error_total > before:
        return None
    normalised = normalise_text(text)
    external_id = given_id if given_id is not None else normalised_prompt_id(normalised)
    return PromptRecord(external_id, text, normalised, category, row.line)


def _text(row: RawRow, found: Collector, limits: UploadLimits) -> str | None:
    value = row.fields.get("text")
    if value is None:
        found.error(row.line, "text", "missing text")
        return None
    if not isinstance(value, str):
        found.error(row.line, "text", f"text must be a string, not {json_type(value)}")
        return None
    if not value.strip():
        found.error(row.line, "text", "empty text")
    elif len(value) > limits.max_text_chars:
        limit = limits.max_text_chars
        found.error(row.line, "text", f"text is {len(value)} characters, over the limit {limit}")
    check_storable(value, row.line, "text", found)
    return value


def _optional(row: RawRow, name: str, max_chars: int, found: Collector, fmt: Format) -> str | None:
    """An optional string field; an integer id in JSON is read as its decimal text."""
    value = row.fields.get(name)
    if fmt == "jsonl" and name == "id" and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        found.error(row.line, name, f"{name} must be a string, not {json_type(value)}")
        return None
    if not value.strip():
        found.error(row.line, name, f"blank {name}")
    if len(value) > max_chars:
        found.error(row.line, name, f"{name} is {len(value)} characters, over {max_chars}")
    check_storable(value, row.line, name, found)
    return value


def check_storable(value: str, line: int, name: str, found: Collector) -> None:
    """PostgreSQL text cannot hold NUL, and UTF-8 cannot encode an unpaired surrogate."""
    nul = value.find("\x00")
    if nul >= 0:
        found.error(line, name, f"contains a NUL character at position {nul}")
    # A regular expression, not a loop over characters: this runs on every cell of a file.
    surrogate = _SURROGATE.search(value)
    if surrogate is not None:
        found.error(line, name, f"contains an unpaired surrogate at position {surrogate.start()}")


class _Seen:
    """The texts (after normalising) and ids read so far: the same one again is an error on
    the later line."""

    def __init__(self, found: Collector) -> None:
        self.found = found
        self.texts: dict[str, int] = {}
        self.ids: dict[str, int] = {}

    def first(self, p: PromptRecord) -> bool:
        """Record the prompt; False (and an error) when its text or id came before."""
        first_text = self.texts.setdefault(p.normalised_text, p.line)
        first_id = self.ids.setdefault(p.external_id, p.line)
        if first_text != p.line:
            self.found.error(p.line, "text", f"duplicate text: the same as line {first_text}")
        elif first_id != p.line:
            message = f"duplicate id {p.external_id!r}: first on line {first_id}"
            self.found.error(p.line, "id", message)
        else:
            return True
        return False


def json_type(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number")
