"""The event loop every long-running harmrank process runs on: uvloop where it is installed.

uvicorn already picks uvloop and httptools for the services (its ``loop="auto"`` and
``http="auto"``, with ``uvicorn[standard]`` installed); a process that starts its own loop with
``asyncio.run`` (the worker, the local stack) would get asyncio's pure-Python selector loop
instead, whose callback and socket handling cost the worker about a third of its CPU per task.
uvloop is a declared dependency on CPython outside Windows; elsewhere asyncio's loop is used.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop factory, or None (asyncio's default) where uvloop is not installed."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on the fastest loop available (``asyncio.Runner`` takes the factory)."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)
