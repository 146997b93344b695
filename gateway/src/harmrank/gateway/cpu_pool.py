"""Worker processes for the gateway's CPU-bound work: parsing uploads and drawing reports.

A worker *thread* is not enough: pure-Python parsing and matplotlib hold the GIL, so the event
loop waits for it in 5 ms slices between every step of every request, and a 10 MiB bad upload
stalled ``/healthz`` for tens of seconds. In a process of its own the work holds no lock the
gateway needs, and at a lower scheduling priority it takes only the CPU the gateway leaves.

The pools belong to the app's lifespan (``cpu_pools``). Workers are forked from one
``forkserver`` per gateway process that imported the work's modules once, so a new worker
costs a fork, not an interpreter start and seconds of imports; and no worker inherits the
gateway's threads, event loop or database connections, as a plain fork would. An app composed
of the routers without that lifespan (tests, embedding) runs the same work in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import forkserver
from typing import Protocol, TypeVar, TypeVarTuple, Unpack

import anyio
from starlette.datastructures import State

from harmrank.common.errors import HarmrankError

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

PARSE = "parse"
REPORTS = "reports"
PRELOAD = (
    "harmrank.gateway.datasets.upload",
    "harmrank.gateway.rankings_import.parse",
    "harmrank.gateway.report_api.compute",
)
"""What the workers run, imported once in the fork server (matplotlib and the metrics are
seconds of imports on a busy machine)."""
NICENESS = 10
"""Added to the workers' nice value: on a busy machine the gateway's event loop (nice 0) gets
the CPU first, about ten times the share of a worker, and the workers use what is left."""


class WorkerLost(HarmrankError):
    status_code = 503
    error_type = "worker_lost"


class Runner(Protocol):
    """Runs a picklable function (module level, picklable arguments) away from the event loop."""

    async def run(self, fn: Callable[[Unpack[Ts]], T], *args: *Ts) -> T: ...


def _lower_priority() -> None:
    if hasattr(os, "nice"):
        os.nice(NICENESS)


def _start_fork_server() -> None:
    if _context().get_start_method() == "forkserver":
        forkserver.ensure_running()


def _context() -> multiprocessing.context.BaseContext:
    if "forkserver" not in multiprocessing.get_all_start_methods():  # Windows
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    # Only read when the fork server starts (once per process); the same list every time.
    context.set_forkserver_preload(list(PRELOAD))
    return context


class CpuPool:
    """A few worker processes, started when first needed; ``run`` awaits one's answer."""

    def __init__(self, name: str, processes: int) -> None:
        self.name = name
        self.processes = processes
        self.in_flight = 0
        """Calls sent and not answered yet (running or waiting for a worker)."""
        self._executor = self._new_executor()

    def _new_executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            self.processes, mp_context=_context(), initializer=_lower_priority
        )

    async def run(self, fn: Callable[[Unpack[Ts]], T], *args: *Ts) -> T:
        executor = self._executor
        self.in_flight += 1
        try:
            # Submitted from a thread: a submit may start a worker, and the first one waits for
            # the fork server to start and import (seconds) in the submitting thread.
            sent = await anyio.to_thread.run_sync(executor.submit, fn, *args)
            return await asyncio.wrap_future(sent)
        except BrokenProcessPool:
            # A worker died (killed, out of memory): the executor refuses all work from then
            # on, so the next request gets a new one instead of the same error for ever.
            if executor is self._executor:
                self._executor = self._new_executor()
                executor.shutdown(wait=False, cancel_futures=True)
            raise WorkerLost(
                f"a {self.name} worker process ended before it answered (out of memory?), "
                "so nothing was stored: retry; a smaller file or fewer resamples need less"
            ) from None
        finally:
            self.in_flight -= 1

    async def close(self) -> None:
        # Waiting for the running work to end blocks, so not on the event loop.
        await anyio.to_thread.run_sync(lambda: self._executor.shutdown(cancel_futures=True))


class Threads:
    """The same work in a thread of this process: for an app without the gateway's pools."""

    def __init__(self, threads: int | None = None) -> None:
        self.limiter = anyio.CapacityLimiter(threads) if threads else None

    async def run(self, fn: Callable[[Unpack[Ts]], T], *args: *Ts) -> T:
        return await anyio.to_thread.run_sync(fn, *args, limiter=self.limiter)


def runner(state: State, name: str, threads: int | None = None) -> Runner:
    """The app's pool called ``name``, or (at most ``threads``) threads when the app has no
    pools."""
    pools: dict[str, CpuPool] | None = getattr(state, "cpu_pools", None)
    if pools is None:
        return Threads(threads)
    return pools[name]


@contextlib.asynccontextmanager
async def cpu_pools(state: State, sizes: dict[str, int]) -> AsyncIterator[dict[str, CpuPool]]:
    """The app's pools on ``state.cpu_pools`` for the lifespan; their workers stopped after."""
    # The fork server imports the work's modules (seconds; over ten on a busy machine), so it
    # starts now, in the background, instead of inside the first upload or report, which would
    # wait for it: the gateway answers meanwhile, and only a request sent in the first seconds
    # still waits for what is left.
    threading.Thread(target=_start_fork_server, name="fork-server-start", daemon=True).start()
    pools = {name: CpuPool(name, size) for name, size in sizes.items()}
    state.cpu_pools = pools
    try:
        yield pools
    finally:
        del state.cpu_pools
        for pool in pools.values():
            await pool.close()
