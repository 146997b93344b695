"""Worker processes for the gateway's CPU-bound work: parsing uploads and drawing reports.

A worker *thread* is not enough: pure-Python parsing and matplotlib hold the GIL, so the event
loop waits for it in 5 ms slices between every step of every request, and a 10 MiB bad upload
stalled ``/healthz`` for tens of seconds. In a process of its own the work holds no lock the
gateway needs, and at a lower scheduling priority it takes only the CPU the gateway leaves.

The pools belong to the app's lifespan (``cpu_pools``). Workers are forked from one
``forkserver`` per gateway process, so no worker inherits the gateway's threads, event loop or
database connections, as a plain fork would. The fork server runs at the workers' lower
priority from its first instruction and preloads only ``cpu_worker`` (light): a worker imports
what its work needs on its first call (a parse: about a second of CPU; a report: matplotlib and
the metrics, several), once for the worker's life, so a gateway that never parses nor reports
never pays for those imports. An app composed of the routers without that lifespan (tests,
embedding) runs the same work in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import sys
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ProcessPoolExecutor
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
PRELOAD = ("harmrank.gateway.cpu_worker",)
"""What the fork server imports: only what every worker needs before its first call."""
NICENESS = 10
"""Added to the gateway's nice value for the fork server and the workers: on a busy machine the
gateway's event loop (nice 0) gets the CPU first, about ten times the share of a worker, and the
workers use what is left."""
MAX_NICE = 19


class WorkerLost(HarmrankError):
    status_code = 503
    error_type = "worker_lost"


class Runner(Protocol):
    """Runs a picklable function (module level, picklable arguments) away from the event loop."""

    async def run(self, fn: Callable[[Unpack[Ts]], T], *args: *Ts) -> T: ...


def _lowered_niceness() -> int:
    if not hasattr(os, "getpriority"):  # Windows
        return 0
    return min(os.getpriority(os.PRIO_PROCESS, 0) + NICENESS, MAX_NICE)


def _lower_priority(niceness: int) -> None:
    """In a worker: at ``niceness`` (forked from the fork server, it is there already)."""
    if hasattr(os, "getpriority") and os.getpriority(os.PRIO_PROCESS, 0) < niceness:
        os.setpriority(os.PRIO_PROCESS, 0, niceness)


def _start_fork_server(wait: bool) -> None:
    """Start the fork server if it is not running, at the workers' priority.

    Linux keeps a nice value per thread, and a new process takes the one of the thread that
    forked it: so a thread of its own lowers its value and then starts the fork server, which
    is niced before its first instruction (its imports included) while the gateway's threads
    keep theirs. Elsewhere a nice value belongs to the whole process, so only the workers are
    niced (by the pool's initializer)."""
    if _context().get_start_method() != "forkserver":
        return

    def start() -> None:
        if sys.platform == "linux":
            os.nice(NICENESS)
        forkserver.ensure_running()

    thread = threading.Thread(target=start, name="fork-server-start", daemon=True)
    thread.start()
    if wait:
        thread.join()


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
            self.processes,
            mp_context=_context(),
            initializer=_lower_priority,
            initargs=(_lowered_niceness(),),
        )

    async def run(self, fn: Callable[[Unpack[Ts]], T], *args: *Ts) -> T:
        executor = self._executor
        self.in_flight += 1
        try:
            # From a thread: a submit may start a worker, which waits for the fork server.
            sent = await anyio.to_thread.run_sync(_submit, executor, fn, *args)
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


def _submit(executor: ProcessPoolExecutor, fn: Callable[[Unpack[Ts]], T], *args: *Ts) -> Future[T]:
    # A worker started by this submit would start the fork server itself if it is not running
    # (not started yet, or ended), and at this thread's priority.
    _start_fork_server(wait=True)
    return executor.submit(fn, *args)


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
    # The fork server starts now, in the background (an interpreter's start, at low priority),
    # so the first upload or report does not wait for it.
    _start_fork_server(wait=False)
    pools = {name: CpuPool(name, size) for name, size in sizes.items()}
    state.cpu_pools = pools
    try:
        yield pools
    finally:
        del state.cpu_pools
        for pool in pools.values():
            await pool.close()
