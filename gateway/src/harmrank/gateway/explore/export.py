"""Export of the explorer's current filter: one row per prompt, every response and ranking.

Written by the gateway's one exporter (`harmrank.gateway.export`): CSV text cells that a
spreadsheet would run as a formula get a leading ``'`` unless ``raw``; JSONL keeps every text
exactly as stored.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession

from harmrank.gateway.explore import facts as f
from harmrank.gateway.explore import repository as repo
from harmrank.gateway.explore import service
from harmrank.gateway.export import ExportFormat, export_response
from harmrank.gateway.listings.scope import ResultScope


async def export(
    session: AsyncSession, scope: ResultScope, flt: f.Filter, fmt: ExportFormat, raw: bool
) -> StreamingResponse:
    explored, kept = await service.selected(session, scope, flt)
    columns = [
        "prompt_id",
        "category",
        "prompt",
        "disagreement",
        *(f"response:{m}" for m in explored.models),
        *(f"ranks:{c.name}" for c in explored.columns),
    ]
    texts = await repo.response_texts(session, scope, [p.id for p in kept])
    rows = _rows(kept, explored, texts)
    return export_response(fmt, columns, rows, f"explore-{scope.label}", raw)


async def _rows(
    kept: Sequence[f.PromptFacts], explored: service.Explored, texts: dict[int, dict[str, str]]
) -> AsyncIterator[dict[str, Any]]:
    for p in kept:
        row: dict[str, Any] = {
            "prompt_id": p.external_id,
            "category": p.category,
            "prompt": explored.texts[p.id],
            "disagreement": f.disagreement(p),
        }
        for model in explored.models:
            row[f"response:{model}"] = texts.get(p.id, {}).get(model)
        for column in explored.columns:
            ranks = p.ranks.get(column.name)
            row[f"ranks:{column.name}"] = list(ranks) if ranks is not None else None
        yield row
