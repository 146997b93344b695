"""Query parameters and OpenAPI answers shared by the result listings and exports (the page
parameters, ``Limit`` and ``Cursor``, are in :mod:`harmrank.gateway.pagination`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query

from harmrank.common.errors import ErrorBody
from harmrank.gateway.export import ExportFormat

Format = Annotated[ExportFormat, Query(description="`csv` (with a header row) or `jsonl`.")]
RawCsv = Annotated[
    bool,
    Query(
        description="CSV only: write text cells exactly as stored. By default a cell starting "
        "with `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading `'` so a spreadsheet "
        "shows it as text instead of running it as a formula (OWASP, CSV injection). JSONL is "
        "always exact."
    ),
]
ModelFilter = Annotated[str | None, Query(description="A model name.")]
PromptFilter = Annotated[str | None, Query(description="A prompt's id in the dataset.")]
AnnotatorFilter = Annotated[str | None, Query(description="An annotator name.")]

Responses = dict[int | str, dict[str, Any]]


BAD_PARAMETER: dict[str, Any] = {
    "model": ErrorBody,
    "description": "A bad parameter, or a cursor no page gave out",
}
"""The OpenAPI 422 answer of a read route."""


def read_errors(missing: str) -> Responses:
    """The OpenAPI error answers of a read route: a 404 that says ``missing`` ("No such
    dataset"), and a 422 for a bad parameter or cursor."""
    return {404: {"model": ErrorBody, "description": missing}, 422: BAD_PARAMETER}


def export_answers(errors: Responses) -> Responses:
    """The OpenAPI answers of an export route: its errors and a streamed CSV or JSONL body."""
    streamed: dict[str, Any] = {"text/csv": {}, "application/x-ndjson": {}}
    return {**errors, 200: {"description": "Every matching row, streamed", "content": streamed}}
