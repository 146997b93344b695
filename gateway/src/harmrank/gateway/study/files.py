"""Read one of the study's CSV files robustly, keeping where every row came from.

The files were exported by different student groups with different tools, so the reader
tolerates a BOM, legacy single-byte exports, leftover pandas index columns, trailing empty
columns and header spelling, and reports the physical line each record starts on (cells span
lines).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from harmrank.common.errors import InvalidInput

_BOM = b"\xef\xbb\xbf"
_WORD = re.compile(r"[a-z0-9]+")


class StudyFormatError(InvalidInput):
    error_type = "study_format"


@dataclass(frozen=True)
class Row:
    """One record: its cells keyed by canonical header, and where it starts in its file."""

    file: str
    line: int
    cells: Mapping[str, str]

    def get(self, column: str) -> str:
        return self.cells.get(column, "")


@dataclass(frozen=True)
class Table:
    """A whole file: the encoding it was read with, its kept columns, the columns ignored."""

    path: str
    encoding: str
    columns: tuple[str, ...]
    ignored_columns: tuple[str, ...]
    rows: tuple[Row, ...]

    def column(self, *names: str, word: str | None = None) -> str:
        """The first column named like one of ``names``, else the first with ``word`` in it.

        ``word`` matches whole words ("mpt" finds "model 2 - mpt-7b" but not "prompt").
        """
        wanted = [canonical_header(n) for n in names]
        found = next((c for c in self.columns if c in wanted), None)
        if found is None and word is not None:
            found = next((c for c in self.columns if word in _WORD.findall(c)), None)
        if found is None:
            raise StudyFormatError(f"{self.path}: no column like {names or word!r}")
        return found


def canonical_header(name: str) -> str:
    """``\\ufeffPrompt``, ``"Ranking"`` and `` prompt `` all become ``prompt``."""
    return " ".join(name.replace("\ufeff", "").strip().strip('"').split()).casefold()


# Curly quotes, dashes and the ellipsis: what office tools put into English text. The legacy
# encoding that turns a file's high bytes into these is the one it was written in: Mac Roman's
# 0xD5 is ’ where Windows-1252 reads Õ, and Windows-1252's 0x92 is ’ where Mac Roman reads í.
_TYPOGRAPHY = frozenset("\u2018\u2019\u201c\u201d\u2013\u2014\u2026")
_LEGACY = ("cp1252", "mac_roman")


def decode(data: bytes) -> tuple[str, str]:
    """Decode as UTF-8 (with or without BOM); a file that is mostly UTF-8 with a few broken
    sequences as UTF-8 with those replaced by U+FFFD; else as the legacy encoding that reads
    its high bytes as typography (Windows-1252 or Mac Roman), latin-1 when neither does.

    The encoding returned says which, and how many sequences were replaced: the raw bytes stay
    in the file, and the import report shows what was done to them."""
    if data.startswith(_BOM):
        return data[len(_BOM) :].decode("utf-8"), "utf-8-sig"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    replaced = data.decode("utf-8", errors="replace")
    broken = replaced.count("\ufffd") - data.count("\ufffd".encode())
    # Legacy single-byte text almost never forms valid multi-byte sequences by chance, so
    # a file with more valid ones than broken ones is UTF-8 that lost some bytes.
    if sum(1 for ch in replaced if ord(ch) > 0x7F and ch != "\ufffd") > broken:
        return replaced, f"utf-8 ({broken} invalid sequences replaced by U+FFFD)"
    best, best_score = data.decode("latin-1"), 0
    encoding = "latin-1"
    for candidate in _LEGACY:
        try:
            text = data.decode(candidate)
        except UnicodeDecodeError:
            continue  # cp1252 leaves five bytes undefined
        score = sum(1 for ch in text if ch in _TYPOGRAPHY)
        if score > best_score:
            best, best_score, encoding = text, score, candidate
    return best, encoding


def read_table(path: Path, name: str | None = None) -> Table:
    """Read ``path``; ``name`` is how rows cite the file (default: the path as given)."""
    text, encoding = decode(path.read_bytes())
    label = name if name is not None else str(path)
    records = _records(text)
    header = next(records, None)
    if header is None:
        raise StudyFormatError(f"{label}: the file is empty")
    keep = [i for i, h in enumerate(header[1]) if not _ignored(canonical_header(h))]
    columns = tuple(canonical_header(header[1][i]) for i in keep)
    ignored = tuple(h for i, h in enumerate(header[1]) if i not in keep)
    rows = tuple(_row(label, line, cells, keep, columns) for line, cells in records)
    return Table(label, encoding, columns, ignored, tuple(r for r in rows if r is not None))


def _ignored(column: str) -> bool:
    # "" is pandas' unnamed index (and a trailing comma's empty column); "unnamed: 0" is the
    # index pandas writes back when a file with an index is read and saved again.
    return not column or column.startswith("unnamed:")


def _records(text: str) -> Iterator[tuple[int, list[str]]]:
    """Each CSV record with the physical line it starts on (1-based)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    consumed = 0
    for cells in reader:
        start = consumed + 1
        consumed = reader.line_num
        if cells:
            yield start, cells


def _row(
    label: str, line: int, cells: list[str], keep: list[int], columns: tuple[str, ...]
) -> Row | None:
    values = [cells[i] if i < len(cells) else "" for i in keep]
    if not any(v.strip() for v in values):
        return None  # a line of bare commas carries no record
    return Row(label, line, dict(zip(columns, values, strict=True)))
