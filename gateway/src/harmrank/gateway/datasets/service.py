"""Dataset upload and dataset views: the logic between the routes and the queries (a dataset's
result pages are the result listings', :mod:`harmrank.gateway.listings`).

Only flushes; the route's session commits, so an upload is stored whole or not at all.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from operator import itemgetter
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from harmrank.common.errors import Conflict, InvalidInput
from harmrank.gateway.cpu_pool import Runner
from harmrank.gateway.datasets import repository as repo
from harmrank.gateway.datasets.form import UploadedFile
from harmrank.gateway.datasets.problems import Problem, counted, listed
from harmrank.gateway.datasets.schemas import (
    DatasetCreated,
    DatasetDetail,
    DatasetPage,
    ProblemOut,
)
from harmrank.gateway.datasets.upload import ParsedUpload, UploadLimits, detect_format, parse_upload
from harmrank.gateway.pagination import fetch_page

# The tag of this module's cursors (see harmrank.gateway.pagination): "d"atasets.
DATASETS = "d"
# Names appear in URLs, so they are kept to characters that need no escaping.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")


class InvalidDataset(InvalidInput):
    error_type = "invalid_dataset"


class DatasetExists(Conflict):
    error_type = "dataset_exists"


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
    # In a thread: 10 MiB take about 8 ms (more on a busy machine) the event loop would wait
    # for; hashlib lets go of the GIL meanwhile.
    digest = await asyncio.to_thread(lambda: hashlib.sha256(upload.data).hexdigest())
    try:
        await repo.insert_dataset(
            session,
            name=name,
            source=f"upload:{upload.filename}",
            source_sha256=digest,
            report=upload_report(parsed),
            prompts=parsed.records,
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
        "prompts": len(parsed.records),
        "warnings": [p.as_dict() for p in listed(parsed.warnings)],
        "warnings_total": parsed.warning_total,
    }


# --- views ----------------------------------------------------------------------------------


async def dataset_detail(session: AsyncSession, name: str) -> DatasetDetail:
    return await repo.dataset_detail(session, name)


async def dataset_page(session: AsyncSession, limit: int, cursor: str | None) -> DatasetPage:
    shown, next_cursor = await fetch_page(
        DATASETS,
        cursor,
        limit,
        lambda after, n: repo.list_datasets(session, after=after, limit=n),
        itemgetter(0),
    )
    return DatasetPage(items=[item for _, item in shown], next_cursor=next_cursor)
