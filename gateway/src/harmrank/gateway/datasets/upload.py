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
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from harmrank.gateway.study.importer import normalise_text, prompt_id

Format = Literal["csv", "jsonl"]
FIELDS = ("text", "category", "id")
# The widths of Prompt.external_id and Prompt.category: longer values would fail at insert.
MAX_ID_CHARS = 128
MAX_CATEGORY_CHARS = 100
MAX_ENCODING_ERRORS = 20
_BOM = b"\xef\xbb\xbf"
_JSONL_EXTENSIONS = (".jsonl", ".ndjson", ".json")
_JSONL_TYPES = ("application/x-ndjson", "application/jsonl", "application/json-lines")


@dataclass(frozen=True)
class UploadLimits:
    # The csv module refuses fields over 131072 characters, so a CSV cannot exceed that anyway.
    max_text_chars: int = 100_000


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a file; ``line`` is 1-based, ``field`` "" when it is the whole line."""

    file: str
    line: int
    field: str
    problem: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PromptRecord:
    external_id: str
    text: str
    normalised_text: str
    category: str | None
    line: int


@dataclass(frozen=True)
class ParsedUpload:
    file: str
    format: Format
    prompts: tuple[PromptRecord, ...]
    errors: tuple[Problem, ...]
    warnings: tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass(frozen=True)
class RawRow:
    """A record as read, before validation: its fields by canonical name."""

    line: int
    fields: dict[str, Any]


@dataclass
class Collector:
    """Problems found so far, split by severity."""

    file: str
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    def error(self, line: int, name: str, problem: str) -> None:
        self.errors.append(Problem(self.file, line, name, problem))

    def warn(self, line: int, name: str, problem: str) -> None:
        self.warnings.append(Problem(self.file, line, name, problem))


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
    """Read and validate the whole file; never raises on bad content."""
    limits = limits or UploadLimits()
    found = Collector(filename)
    text = decode_utf8(data, found)
    rows = list(read_csv(text, found) if fmt == "csv" else read_jsonl(text, found))
    prompts = [p for row in rows if (p := prompt_from(row, found, limits, fmt)) is not None]
    check_duplicates(prompts, found)
    if not rows and not found.errors:
        found.error(1, "", "the file has no prompts")
    errors = sorted(found.errors, key=lambda p: p.line)
    return ParsedUpload(filename, fmt, tuple(prompts), tuple(errors), tuple(found.warnings))


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
        if len(cells) > len(columns):
            found.error(line, "", f"the row has {len(cells)} cells, the header {len(columns)}")
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


def _canonical(header: str) -> str:
    return header.replace("\ufeff", "").strip().casefold()


def csv_records(text: str, found: Collector) -> Iterator[tuple[int, list[str]]]:
    """Each record with the physical line it starts on; a cell may span lines."""
    reader = csv.reader(io.StringIO(text, newline=""))
    consumed = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            # The reader's state after an error is undefined, so stop rather than guess.
            found.error(consumed + 1, "", f"unreadable CSV, the rest is not checked: {exc}")
            return
        start, consumed = consumed + 1, reader.line_num
        if cells:
            yield start, cells


def read_jsonl(text: str, found: Collector, fields: tuple[str, ...] = FIELDS) -> Iterator[RawRow]:
    """One JSON object per line, with only its ``fields``; blank lines are skipped.

    Lines are split on "\\n" alone: str.splitlines would also split on characters such as
    U+2028 that JSON allows unescaped inside a string.
    """
    for number, line in enumerate(text.split("\n"), start=1):
        body = line.removesuffix("\r")
        if not body.strip():
            continue
        try:
            value = json.loads(body)
        except json.JSONDecodeError as exc:
            found.error(number, "", f"bad JSON at column {exc.colno}: {exc.msg}")
            continue
        if not isinstance(value, dict):
            found.error(number, "", f"expected a JSON object, got {json_type(value)}")
            continue
        for name in value:
            if name not in fields:
                found.warn(number, name, "unknown field, ignored")
        yield RawRow(number, {k: v for k, v in value.items() if k in fields})


def prompt_from(
    row: RawRow, found: Collector, limits: UploadLimits, fmt: Format
) -> PromptRecord | None:
    """The row as a prompt, or None when any of its fields is in error."""
    before = len(found.errors)
    text = _text(row, found, limits)
    given_id = _optional(row, "id", MAX_ID_CHARS, found, fmt)
    category = _optional(row, "category", MAX_CATEGORY_CHARS, found, fmt)
    if text is None or len(found.errors) > before:
        return None
    external_id = given_id if given_id is not None else prompt_id(text)
    return PromptRecord(external_id, text, normalise_text(text), category, row.line)


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
    _check_storable(value, row.line, "text", found)
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
    _check_storable(value, row.line, name, found)
    return value


def _check_storable(value: str, line: int, name: str, found: Collector) -> None:
    """PostgreSQL text cannot hold NUL, and UTF-8 cannot encode an unpaired surrogate."""
    nul = value.find("\x00")
    if nul >= 0:
        found.error(line, name, f"contains a NUL character at position {nul}")
    surrogate = next((i for i, c in enumerate(value) if "\ud800" <= c <= "\udfff"), None)
    if surrogate is not None:
        found.error(line, name, f"contains an unpaired surrogate at position {surrogate}")


def check_duplicates(prompts: list[PromptRecord], found: Collector) -> None:
    """The same text (after normalising) or the same id twice is an error on the later line."""
    texts: dict[str, int] = {}
    ids: dict[str, int] = {}
    for p in prompts:
        first_text = texts.setdefault(p.normalised_text, p.line)
        first_id = ids.setdefault(p.external_id, p.line)
        if first_text != p.line:
            found.error(p.line, "text", f"duplicate text: the same as line {first_text}")
        elif first_id != p.line:
            found.error(p.line, "id", f"duplicate id {p.external_id!r}: first on line {first_id}")


def json_type(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number")
