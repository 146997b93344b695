"""Export the rankings made on a dataset's annotation page, in formats the importer reads back.

* ``csv``: the study's layout, ``Prompt``, one ``Model i - <name>`` response column per model in
  canonical order, ``Ranking`` in the study's notation (``3,2,N/A``), and ``Annotator``.
* ``jsonl``: one object per ranking with ``annotator``, ``prompt_id`` and ``ranks`` (what
  ``POST /v1/datasets/{name}/rankings`` reads), and ``annotation``: the prompt's text, the
  notation, seconds spent, flags, note, and the order and labels the responses were shown in
  (one field, so the importer ignores it with one warning per line).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession

from harmrank.gateway.annotation import repository as repo
from harmrank.gateway.datasets import repository as datasets_repo
from harmrank.gateway.export import ExportFormat, export_response
from harmrank.gateway.study.notation import format_ranks

JSONL_COLUMNS = ("annotator", "prompt_id", "ranks", "annotation")
_SHOWN = ("order", "labels", "seconds", "flags", "note")


def csv_columns(models: Sequence[str]) -> tuple[str, ...]:
    return (
        "Prompt",
        *(f"Model {i} - {m}" for i, m in enumerate(models, start=1)),
        "Ranking",
        "Annotator",
    )


async def export_rows(
    session: AsyncSession, name: str, fmt: ExportFormat
) -> tuple[tuple[str, ...], list[dict[str, Any]]]:
    dataset = await datasets_repo.dataset_id_by_name(session, name)
    models = await datasets_repo.models_of(session, dataset)
    found = await repo.exported_rankings(session, dataset)
    if fmt == "jsonl":
        return JSONL_COLUMNS, [
            _jsonl_row(a, p.external_id, p.text, r, pres) for a, p, r, pres in found
        ]
    texts = await datasets_repo.response_texts(session, {p.id for _, p, _, _ in found})
    columns = csv_columns([n for _, n in models])
    rows = []
    for annotator, prompt, ranks, _ in found:
        responses = [texts.get((prompt.id, m), [""])[-1] for m, _ in models]
        rows.append(
            dict(
                zip(
                    columns,
                    [prompt.text, *responses, format_ranks(tuple(ranks)), annotator],
                    strict=True,
                )
            )
        )
    return columns, rows


def _jsonl_row(
    annotator: str, prompt_id: str, prompt: str, ranks: list[int], pres: dict[str, Any] | None
) -> dict[str, Any]:
    shown = pres or {}
    return {
        "annotator": annotator,
        "prompt_id": prompt_id,
        "ranks": ranks,
        "annotation": {
            "prompt": prompt,
            "ranking": format_ranks(tuple(ranks)),
            **{k: shown[k] for k in _SHOWN if k in shown},
        },
    }


async def export(
    session: AsyncSession, name: str, fmt: ExportFormat, raw: bool = False
) -> StreamingResponse:
    columns, rows = await export_rows(session, name, fmt)

    async def stream() -> AsyncIterator[dict[str, Any]]:
        for row in rows:
            yield row

    return export_response(fmt, columns, stream(), f"{name}-annotation", raw)
