"""A run is checked against what exists before it is committed.

The dataset and its categories are checked against the database before anything is planned;
the models against the generator's ``/v1/models`` and the judges against the judge service's
``/v1/judges`` while the run begins to be planned in the request's transaction, which a failed
check rolls back. Every unknown name is reported at once, with the known ones, as one 422; a
service that cannot be asked is a 503 naming it, so a typo or a missing judge never becomes a
run that sits at 0%.

Asked first, the services held up every run's planning by their answer: 27 ms of a 1,000-prompt
run's 0.21 s creation (``bench/platform_overhead.py``), the generator asking each model server
for its health. Planning waits for their answer only before it writes the run's tasks, nearly
all of its work (a 50,000-prompt run's 200,001 tasks: 5.6 s of its 6.9 s), so a run with a wrong
name is refused before that.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from harmrank.common.errors import InvalidInput, UpstreamUnavailable
from harmrank.common.http import pooled_transport
from harmrank.gateway.results import repository as results
from harmrank.gateway.runs.schemas import RunCreate

T = TypeVar("T")

# Listing names is quick; a service slower than this is as good as unreachable for a check.
TIMEOUT = httpx.Timeout(10.0, connect=3.0)


@dataclass
class Services:
    """Where the generator and the judge service are (the gateway's settings), and the one
    client that asks them, open while the gateway is (``opened``, in its lifespan)."""

    generator_url: str
    judge_url: str
    client: httpx.AsyncClient | None = None

    @contextlib.asynccontextmanager
    async def opened(self) -> AsyncIterator[None]:
        # Built once: a client per run creation (an aiohttp session and its connections)
        # took the CPU of a third of a 1,000-prompt run's head, which its first calls wait for
        # (``bench/platform_overhead.py``).
        transport = pooled_transport(4)
        async with httpx.AsyncClient(timeout=TIMEOUT, transport=transport) as self.client:
            try:
                yield
            finally:
                self.client = None

    async def names(self) -> tuple[list[str] | str, list[str] | str]:
        """Model names and judge names, or for each the reason it could not be had."""
        if self.client is None:
            raise RuntimeError("the services are asked only while opened (the app's lifespan)")
        return await asyncio.gather(
            _names(self.client, "generator", self.generator_url, "/v1/models", "models"),
            _names(self.client, "judge service", self.judge_url, "/v1/judges", "judges"),
        )


async def _names(
    client: httpx.AsyncClient, service: str, base_url: str, path: str, key: str
) -> list[str] | str:
    url = base_url.rstrip("/") + path
    try:
        response = await client.get(url)
        response.raise_for_status()
        return [str(entry["name"]) for entry in response.json()[key]]
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        return f"the {service} at {base_url} could not be asked for its {key} ({_reason(exc)})"


def _reason(exc: Exception) -> str:
    if isinstance(exc, httpx.HTTPStatusError):
        return f"it answered {exc.response.status_code}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


@dataclass
class _Findings:
    unknown: list[dict[str, Any]]
    unasked: list[str]

    def compare(self, field: str, asked: list[str], known: list[str] | str) -> None:
        if isinstance(known, str):
            self.unasked.append(known)
            return
        missing = [name for name in asked if name not in known]
        if missing:
            self.unknown.append({"field": field, "unknown": missing, "known": sorted(known)})

    def raise_any(self) -> None:
        """A 422 naming every unknown name, else a 503 naming any service not reachable."""
        if self.unknown:
            parts = [f"unknown {u['field']} {_quoted(u['unknown'])} (known: {_quoted(u['known'])})"
                     for u in self.unknown]  # fmt: skip
            parts += [f"not checked: {reason}" for reason in self.unasked]
            raise InvalidInput("; ".join(parts), details=self.unknown)
        if self.unasked:
            raise UpstreamUnavailable("; ".join(self.unasked) + "; no run was created")


def _quoted(names: list[str]) -> str:
    return ", ".join(repr(n) for n in names) or "none"


async def _check_database(session: AsyncSession, spec: RunCreate, found: _Findings) -> None:
    datasets = await results.dataset_names(session)
    found.compare("prompts.dataset", [spec.prompts.dataset], datasets)
    if spec.prompts.categories and spec.prompts.dataset in datasets:
        categories = await results.dataset_categories(session, spec.prompts.dataset)
        found.compare("prompts.categories", spec.prompts.categories, categories)


Checkpoint = Callable[[], Awaitable[None]]
"""Waits for the services' answer and raises what the checks found (see ``plan_checked``)."""


async def plan_checked(
    session: AsyncSession,
    spec: RunCreate,
    services: Services | None,
    plan: Callable[[Checkpoint], Awaitable[T]],
) -> T:
    """Plan the run with ``plan`` (which flushes, never commits) once the database knows its
    dataset and categories, while the services are asked for their names. ``plan`` awaits the
    checkpoint it is given before the bulk of its work (the tasks): it raises a 422 naming every
    unknown name, else a 503 naming any service not reachable, for the caller to roll back.

    ``services`` None (an app built without downstreams) checks only the database's names."""
    check = _Check(spec, services)
    try:
        await _check_database(session, spec, check.found)
        if check.found.unknown:
            await check()
        planned = await plan(check)
        await check()  # should ``plan`` not have: nothing is kept unchecked
        return planned
    finally:
        await check.cancel()


class _Check:
    """The services asked at once; their answer awaited when the checkpoint is reached."""

    def __init__(self, spec: RunCreate, services: Services | None) -> None:
        self.spec = spec
        self.found = _Findings([], [])
        # Not in a TaskGroup: its exception group would turn a database error's 503 into a 500.
        self.asked = None if services is None else asyncio.ensure_future(services.names())

    async def __call__(self) -> None:
        if self.asked is not None:
            models, judges = await self.asked
            self.asked = None  # compared once
            generated = [m.name for m in self.spec.models if m.source == "generate"]
            if generated:
                self.found.compare("models", generated, models)
            self.found.compare("judges", [j.name for j in self.spec.judges], judges)
        self.found.raise_any()

    async def cancel(self) -> None:
        """Stop asking (the database failed, or planning did, before the checkpoint)."""
        if self.asked is not None:
            self.asked.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.asked
