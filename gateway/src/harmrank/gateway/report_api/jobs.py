"""Reports computed in the app's report processes: each at most once at a time, a bounded number
waiting, and the answers kept while what they were computed from is unchanged.

A report is asked for by a *key* (what was asked: dataset or run, kind, parameters) at a
*version* (what it is computed from in brief, read from the database on every request: a
dataset's content fingerprint; None for what is never kept, a run's page). Then, in this order:

- a computed answer of the same key and version is sent again (no worker, no queue);
- a request for a report being computed waits for that computation, taking no place;
- past ``processes + queue`` computations running or waiting, 503 ``reports_busy`` with
  ``Retry-After``;
- otherwise its inputs are read (in the caller's short session) and it is computed.

The caller reads version and inputs in one session and returns the connection to the pool
before it waits for the answer (``start`` answers a future): a slow report never holds a
connection other routes and the workers need. And it reads inside ``reading``: at most
``processes`` report requests use the database at once, so a crowd of them (even of kept
reports) queues there, not in the connection pool ahead of every other route; past
``processes + queue`` of them, 503 as well.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, ClassVar

from fastapi import Response
from starlette.datastructures import State

from harmrank.common.errors import HarmrankError
from harmrank.gateway import cpu_pool
from harmrank.gateway.settings import GatewaySettings

RETRY_AFTER_SECONDS = 5


class ReportsBusy(HarmrankError):
    status_code = 503
    error_type = "reports_busy"
    headers: ClassVar[dict[str, str]] = {"Retry-After": str(RETRY_AFTER_SECONDS)}


@dataclass(frozen=True)
class Rendered:
    """A report as sent: computed (and encoded) in a worker, so the event loop only sends it."""

    body: bytes
    media_type: str

    def response(self) -> Response:
        return Response(self.body, media_type=self.media_type)


def as_html(render: Callable[..., str], *args: Any) -> Rendered:
    """In a worker: ``render``'s page, encoded."""
    return Rendered(render(*args).encode("utf-8"), "text/html; charset=utf-8")


def as_json(render: Callable[..., dict[str, Any]], *args: Any) -> Rendered:
    """In a worker: ``render``'s answer as JSON, encoded as Starlette's JSONResponse does."""
    text = json.dumps(render(*args), ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return Rendered(text.encode("utf-8"), "application/json")


Work = Callable[[], Rendered]
"""A picklable call (a ``functools.partial`` of ``as_html`` or ``as_json``)."""


@dataclass(frozen=True)
class ReportLimits:
    max_resamples: int
    processes: int
    queue: int
    cache_entries: int

    @classmethod
    def of(cls, settings: GatewaySettings | None) -> ReportLimits:
        """From the gateway's settings; without them (another app), the defaults."""
        settings = settings or GatewaySettings.model_construct()
        return cls(
            settings.report_max_resamples,
            settings.report_processes,
            settings.report_queue,
            settings.report_cache_entries,
        )


class ReportJobs:
    """The app's reports: running, waiting and computed."""

    def __init__(self, limits: ReportLimits, runner: cpu_pool.Runner) -> None:
        self.limits = limits
        self.runner = runner
        self.admitted = 0
        """Computations running or waiting for a worker."""
        self.readers = 0
        """Requests reading from the database or waiting to."""
        self._reading = asyncio.Semaphore(limits.processes)
        self.computed = 0
        self.served_again = 0
        self._running: dict[Hashable, tuple[Any, asyncio.Future[Rendered]]] = {}
        self._done: OrderedDict[Hashable, tuple[Any, Rendered]] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()

    @contextlib.asynccontextmanager
    async def reading(self) -> AsyncIterator[None]:
        """A turn to read what a report needs (its version, its inputs); 503 past the queue."""
        self._refuse_past(self.readers, "reading or waiting to read")
        self.readers += 1
        try:
            async with self._reading:
                yield
        finally:
            self.readers -= 1

    async def start(
        self, key: Hashable, version: Any, prepare: Callable[[], Awaitable[Work]]
    ) -> asyncio.Future[Rendered]:
        """The answer to ``key`` at ``version``: kept, being computed, or computed now with
        what ``prepare`` reads (called only then). ``version`` None is never kept."""
        kept = self._done.get(key)
        if kept is not None and version is not None and kept[0] == version:
            self._done.move_to_end(key)
            self.served_again += 1
            return _finished(kept[1])
        running = self._running.get(key)
        if running is not None and running[0] == version:
            return running[1]
        self._admit()
        answer: asyncio.Future[Rendered] = asyncio.get_running_loop().create_future()
        self._running[key] = (version, answer)
        try:
            work = await prepare()
        except BaseException as exc:
            self._settle(key, answer)
            _fail(answer, exc)
            raise
        task = asyncio.create_task(self._compute(key, version, work, answer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return answer

    def _admit(self) -> None:
        self._refuse_past(self.admitted, "being computed or waiting")
        self.admitted += 1

    def _refuse_past(self, count: int, doing: str) -> None:
        limits = self.limits
        if count >= limits.processes + limits.queue:
            raise ReportsBusy(
                f"{count} report requests are {doing} (at most {limits.processes} at once, "
                f"{limits.queue} waiting): retry in {RETRY_AFTER_SECONDS} s "
                "(HARMRANK_GATEWAY_REPORT_PROCESSES, _REPORT_QUEUE)"
            )

    async def _compute(
        self, key: Hashable, version: Any, work: Work, answer: asyncio.Future[Rendered]
    ) -> None:
        try:
            rendered = await self.runner.run(work)
        except BaseException as exc:
            _fail(answer, exc)
            if not isinstance(exc, Exception):
                raise
        else:
            self.computed += 1
            answer.set_result(rendered)
            if version is not None:
                self._keep(key, version, rendered)
        finally:
            self._settle(key, answer)

    def _settle(self, key: Hashable, answer: asyncio.Future[Rendered]) -> None:
        self.admitted -= 1
        running = self._running.get(key)
        if running is not None and running[1] is answer:
            del self._running[key]

    def _keep(self, key: Hashable, version: Any, rendered: Rendered) -> None:
        self._done[key] = (version, rendered)
        self._done.move_to_end(key)
        while len(self._done) > self.limits.cache_entries:
            self._done.popitem(last=False)


def _finished(rendered: Rendered) -> asyncio.Future[Rendered]:
    answer: asyncio.Future[Rendered] = asyncio.get_running_loop().create_future()
    answer.set_result(rendered)
    return answer


def _fail(answer: asyncio.Future[Rendered], exc: BaseException) -> None:
    """Hand the error to whoever waits for the answer; none may, so it is marked as seen
    (asyncio would log an error nobody retrieved). Those waiting were not cancelled
    themselves: they are told to retry."""
    if isinstance(exc, asyncio.CancelledError):
        exc = ReportsBusy(
            f"the request computing this report ended first: retry in {RETRY_AFTER_SECONDS} s"
        )
    answer.set_exception(exc)
    answer.exception()


def report_jobs(state: State, limits: ReportLimits) -> ReportJobs:
    """The app's report jobs: the gateway's lifespan makes them with its report processes;
    an app without it gets them on first use, in threads."""
    jobs: ReportJobs | None = getattr(state, "report_jobs", None)
    if jobs is None:
        runner = cpu_pool.runner(state, cpu_pool.REPORTS, threads=limits.processes)
        jobs = state.report_jobs = ReportJobs(limits, runner)
    return jobs


async def answer(future: asyncio.Future[Rendered]) -> Response:
    """Wait for a report: a client that leaves stops waiting, not the computation others
    may be waiting for too."""
    rendered = await asyncio.shield(future)
    return rendered.response()
