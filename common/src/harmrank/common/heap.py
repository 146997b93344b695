"""How a long-running harmrank process sets up Python's garbage collector once it has started.

Measured with ``gc.callbacks`` in every process of ``bench/platform_overhead.py`` at 100 ms ×
64 in flight (4,000 LLM calls):

- **Full collections.** A service or worker imports SQLAlchemy, pydantic, FastAPI, aiohttp and
  its own modules: several hundred thousand objects that live as long as the process. In the
  oldest generation, they made each full collection of the worker take 60–130 ms, every 3 s or
  so, a stall of every call in flight (the TGI stand-in's, 150 ms). ``gc.freeze()`` moves every
  object alive at that moment to a permanent generation no collection visits (Python's docs
  recommend it after start-up); the worker's full collections during a run then took 3–15 ms.
- **Young collections.** CPython collects the youngest generation each time allocations,
  net of frees, pass 700. With 64 calls in flight a process keeps a few thousand objects of
  theirs alive at once, so it crossed 700 again and again, each collection traversing them
  all: 750 collections (627 ms) in the generator during a run, 519 (343 ms) in the worker, with
  no reference cycles left to find (``harmrank.common.http``). At 10,000: 5 (17 ms) and 4
  (20 ms).

The price of the freeze: an object alive at start-up that later becomes part of unreachable
cycles is never freed; what a process builds at start-up (modules, clients, settings) lives as
long as it does anyway.

``HARMRANK_GC_TUNING=off`` keeps CPython's defaults. The test suite sets it: hundreds of apps
start and stop in its one process, whose collector then behaves as in any Python program.
"""

from __future__ import annotations

import gc
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from harmrank.common.telemetry import Lifespan

YOUNG_COLLECTION_THRESHOLD = 10_000
"""Allocations (net of frees) between collections of the youngest generation (CPython: 700)."""

TUNING_ENV = "HARMRANK_GC_TUNING"

_tuned = False


def tune_garbage_collector() -> None:
    """Collect once, exempt everything alive from later collections, and collect the young
    generation less often. Call it when the process has started (imports done, clients and
    engines built), before its work begins.

    Once per process: the local stack starts four services in one process, and a test
    process starts hundreds of apps; a full collection and a freeze at each would cost each
    start a full pass over the heap, and keep every test's objects alive to the end."""
    global _tuned
    if _tuned or os.environ.get(TUNING_ENV, "on").lower() == "off":
        return
    _tuned = True
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, older, oldest)


def tuning_after_start(lifespan: Lifespan | None) -> Lifespan:
    """``lifespan``, then :func:`tune_garbage_collector` once its start-up is done (the
    service's clients and engines are built by then), before the first request."""

    @asynccontextmanager
    async def wrapped(app: FastAPI) -> AsyncIterator[None]:
        if lifespan is None:
            tune_garbage_collector()
            yield
            return
        async with lifespan(app):
            tune_garbage_collector()
            yield

    return wrapped
