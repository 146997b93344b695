"""The gateway's worker processes seen from a test: their pids, and pausing one (SIGSTOP) so a
computation or a parse sent to it stays unanswered for as long as the test needs."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator

from fastapi import FastAPI

from harmrank.gateway.cpu_pool import CpuPool


def pool(app: FastAPI, name: str) -> CpuPool:
    pools: dict[str, CpuPool] = app.state.cpu_pools
    return pools[name]


async def worker_pid(app: FastAPI, name: str) -> int:
    """The pid of the pool's worker (a pool of one process): started if it was not yet."""
    pid = await pool(app, name).run(os.getpid)
    assert pid != os.getpid()
    return pid


@contextlib.contextmanager
def paused(pid: int) -> Iterator[None]:
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)
