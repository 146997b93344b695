"""Stream rows as CSV or JSON Lines, so an export of any size holds one batch in memory.

Rows are JSON-ready dicts (what a wire model's ``model_dump(mode="json")`` gives). In CSV,
a list or object cell is written as its JSON text and None as an empty cell; in JSONL every
value keeps its JSON type.

A CSV is opened in spreadsheets, which run a cell starting with ``=``, ``+``, ``-``, ``@``, a
tab or a carriage return as a formula (CSV injection). So, as OWASP recommends, a CSV text
cell starting with one of them is written with a ``'`` in front, which a spreadsheet shows as
text. ``raw=True`` (the routes' ``raw=true``) writes text exactly as stored, for a program or
a round trip; JSONL always does.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import AsyncIterator, Sequence
from typing import Any, Literal

from fastapi.responses import StreamingResponse

ExportFormat = Literal["csv", "jsonl"]
MEDIA_TYPES: dict[str, str] = {
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/x-ndjson; charset=utf-8",
}
# Lines are gathered into chunks of about this many characters: one write per row would
# cost a send per row on a large export.
CHUNK_CHARS = 64 * 1024
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""What makes a spreadsheet read a cell as a formula (OWASP's CSV injection list)."""


def neutralise(text: str) -> str:
    """The text as a spreadsheet shows it but never runs it."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_cell(value: Any, raw: bool = False) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value if raw else neutralise(value)
    return json.dumps(value, ensure_ascii=False)


async def csv_chunks(
    columns: Sequence[str], rows: AsyncIterator[dict[str, Any]], raw: bool = False
) -> AsyncIterator[str]:
    """A header line, then one CSV record per row, with CRLF line ends (RFC 4180)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([csv_cell(c, raw) for c in columns])
    async for row in rows:
        writer.writerow([csv_cell(row.get(c), raw) for c in columns])
        if buffer.tell() >= CHUNK_CHARS:
            yield _drain(buffer)
    yield _drain(buffer)


async def jsonl_chunks(rows: AsyncIterator[dict[str, Any]]) -> AsyncIterator[str]:
    """One JSON object per line; ensure_ascii=False keeps any text as its UTF-8."""
    buffer = io.StringIO()
    async for row in rows:
        buffer.write(json.dumps(row, ensure_ascii=False))
        buffer.write("\n")
        if buffer.tell() >= CHUNK_CHARS:
            yield _drain(buffer)
    yield _drain(buffer)


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


def export_response(
    fmt: ExportFormat,
    columns: Sequence[str],
    rows: AsyncIterator[dict[str, Any]],
    name: str,
    raw: bool = False,
) -> StreamingResponse:
    """A streaming download named ``name.csv`` or ``name.jsonl`` (``raw``: see the module)."""
    chunks = csv_chunks(columns, rows, raw) if fmt == "csv" else jsonl_chunks(rows)
    filename = f"{_UNSAFE_FILENAME.sub('_', name)}.{fmt}"
    return StreamingResponse(
        chunks,
        media_type=MEDIA_TYPES[fmt],
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
