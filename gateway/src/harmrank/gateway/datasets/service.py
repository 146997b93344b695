"""Dataset upload, dataset views and result pages: the logic between the routes and the queries.

Only flushes; the route's session commits, so an upload is stored whole or not at all.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from harmrank.common.errors import BadRequest, Conflict, InvalidInput
from harmrank.gateway.cpu_pool import Runner
from harmrank.gateway.datasets import repository as repo
from harmrank.gateway.datasets.form import UploadedFile
from harmrank.gateway.datasets.schemas import (
    CategoryCount,
    DatasetCreated,
    DatasetDetail,
    DatasetItem,
    DatasetPage,
    ProblemOut,
    RankingItem,
    RankingPage,
    ResponseItem,
    ResponsePage,
)
from harmrank.gateway.datasets.upload import (
    ParsedUpload,
    Problem,
    UploadLimits,
    counted,
    detect_format,
    listed,
    parse_upload,
)
from harmrank.gateway.results import dataset_models
from harmrank.gateway.study.notation import format_ranks

# Names appear in URLs, so they are kept to characters that need no escaping.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")


class InvalidDataset(InvalidInput):
    error_type = "invalid_dataset"


class DatasetExists(Conflict):
    error_type = "dataset_exists"


class InvalidCursor(BadRequest):
    error_type = "invalid_cursor"


def problems_out(problems: tuple[Problem, ...] | list[Problem]) -> list[ProblemOut]:
    return [ProblemOut(**p.as_dict()) for p in problems]


# --- upload ---------------------------------------------------------------------------------


def check_name(name: str | None) -> str:
    if name is None or not _NAME.fullmatch(name):
        raise InvalidInput(
            "name: a dataset name is 1 to 200 letters, digits, '.', '_' or '-',"
            " starting with a letter or digit"
        )
    return name


async def create_dataset(
    session: AsyncSession, name: str, upload: UploadedFile, limits: UploadLimits, parser: Runner
) -> DatasetCreated:
    """Validate the whole file, then store it; any error stores nothing (422 with the report).

    ``parser`` reads the file (the app's parsing processes): a large file takes seconds, and
    the event loop must keep serving meanwhile."""
    fmt = detect_format(upload.filename, upload.content_type, upload.data)
    parsed = await parser.run(parse_upload, upload.data, upload.filename, fmt, limits)
    if not parsed.ok:
        raise InvalidDataset(
            f"{upload.filename}: {counted(parsed.error_total)}, nothing was stored",
            details=[p.as_dict() for p in listed(parsed.errors)],
        )
    if await repo.dataset_exists(session, name):
        raise DatasetExists(f"a dataset named {name!r} exists already")
    try:
        await repo.insert_dataset(
            session,
            name=name,
            source=f"upload:{upload.filename}",
            source_sha256=hashlib.sha256(upload.data).hexdigest(),
            report=upload_report(parsed),
            prompts=parsed.prompts,
        )
    except IntegrityError:
        # Another request took the name between the check and the insert.
        raise DatasetExists(f"a dataset named {name!r} exists already") from None
    detail = await dataset_detail(session, name)
    return DatasetCreated(
        **detail.model_dump(),
        warnings=problems_out(listed(parsed.warnings)),
        warnings_total=parsed.warning_total,
    )


def upload_report(parsed: ParsedUpload) -> dict[str, Any]:
    return {
        "kind": "upload",
        "file": parsed.file,
        "format": parsed.format,
        "prompts": len(parsed.prompts),
        "warnings": [p.as_dict() for p in listed(parsed.warnings)],
        "warnings_total": parsed.warning_total,
    }


# --- views ----------------------------------------------------------------------------------


async def dataset_detail(session: AsyncSession, name: str) -> DatasetDetail:
    facts = await repo.dataset_facts(session, name)
    return DatasetDetail(
        name=facts.name,
        source=facts.source,
        source_sha256=facts.source_sha256,
        created_at=facts.created_at,
        prompts=facts.prompts,
        responses=facts.responses,
        models=facts.models,
        rankings=facts.rankings,
        exclusions=facts.exclusions,
        categories=[CategoryCount(category=c, prompts=n) for c, n in facts.categories],
    )


async def dataset_page(session: AsyncSession, limit: int, cursor: str | None) -> DatasetPage:
    rows = await repo.list_datasets(session, after=decode_cursor("d", cursor), limit=limit + 1)
    items = [
        DatasetItem(name=r.name, source=r.source, created_at=r.created_at, prompts=r.prompts)
        for r in rows[:limit]
    ]
    return DatasetPage(items=items, next_cursor=_next("d", [r.id for r in rows], limit))


async def response_page(
    session: AsyncSession,
    name: str,
    *,
    model: str | None,
    prompt: str | None,
    limit: int,
    cursor: str | None,
) -> ResponsePage:
    dataset_id = await repo.dataset_id_by_name(session, name)
    after = decode_cursor("r", cursor)
    rows = await repo.list_responses(
        session, dataset_id, model=model, prompt=prompt, after=after, limit=limit + 1
    )
    items = [response_item(r) for r in rows[:limit]]
    return ResponsePage(items=items, next_cursor=_next("r", [r.id for r in rows], limit))


async def ranking_page(
    session: AsyncSession,
    name: str,
    *,
    annotator: str | None,
    prompt: str | None,
    model: str | None,
    limit: int,
    cursor: str | None,
) -> RankingPage:
    dataset_id = await repo.dataset_id_by_name(session, name)
    after = decode_cursor("k", cursor)
    rows = await repo.list_rankings(
        session,
        dataset_id,
        annotator=annotator,
        prompt=prompt,
        model=model,
        after=after,
        limit=limit + 1,
    )
    return RankingPage(
        models=list(await dataset_models(session, dataset_id)),
        items=[ranking_item(r) for r in rows[:limit]],
        next_cursor=_next("k", [r.id for r in rows], limit),
    )


# Built from the record's fields rather than dataclasses.asdict, which deep-copies every
# value and cost more than the rest of a page of responses.


def response_item(record: repo.ResponseRecord) -> ResponseItem:
    return ResponseItem(
        id=record.id,
        prompt_id=record.prompt_id,
        prompt=record.prompt,
        model=record.model,
        text=record.text,
        generation_key=record.generation_key,
        source=record.source,
        created_at=record.created_at,
    )


def ranking_item(record: repo.RankingRecord) -> RankingItem:
    return RankingItem(
        id=record.id,
        annotator=record.annotator,
        annotator_kind=record.annotator_kind,
        prompt_id=record.prompt_id,
        ranking=format_ranks(tuple(record.ranks)),
        ranks=record.ranks,
        raw_value=record.raw_value,
        normalisations=record.normalisations,
        source=record.source,
        presentation_key=record.presentation_key,
        created_at=record.created_at,
    )


# --- exports --------------------------------------------------------------------------------
# Every export of a dataset or a run streams the same rows; what differs is which ones.


async def response_rows(
    sessions: async_sessionmaker[AsyncSession], dataset_id: int, **only: Any
) -> AsyncIterator[dict[str, Any]]:
    """The matching responses as JSON-ready rows, read in a session of their own (the request's
    has ended once the stream starts). ``only``: the filters of ``repo.list_responses``."""
    async with sessions() as session:
        async for record in repo.iter_responses(session, dataset_id, **only):
            yield response_item(record).model_dump(mode="json")


async def ranking_rows(
    sessions: async_sessionmaker[AsyncSession], dataset_id: int, **only: Any
) -> AsyncIterator[dict[str, Any]]:
    """The matching rankings as JSON-ready rows; ``only``: the filters of
    ``repo.list_rankings``."""
    async with sessions() as session:
        async for record in repo.iter_rankings(session, dataset_id, **only):
            yield ranking_item(record).model_dump(mode="json")


# --- cursors --------------------------------------------------------------------------------
# A cursor is the last id seen, tagged with what it pages ("d"atasets, "r"esponses, ran"k"ings)
# so one listing's cursor is refused by another. Opaque to clients: the encoding may change.


def encode_cursor(kind: str, last_id: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str | None) -> int | None:
    if cursor is None or cursor == "":
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidCursor("cursor: not a cursor this listing gave out") from None
    tag, _, number = raw.partition(":")
    # Ids are BIGINT: a larger number would overflow in the driver (a 500), not be a 400.
    if tag != kind or not (number.isascii() and number.isdigit()) or int(number) >= 2**63:
        raise InvalidCursor("cursor: not a cursor this listing gave out")
    return int(number)


def _next(kind: str, ids: list[int], limit: int) -> str | None:
    # One row more than the page was fetched: its presence says there is a next page.
    return encode_cursor(kind, ids[limit - 1]) if len(ids) > limit else None
