"""The event loop of processes that start their own (the worker, the local stack): uvloop when
installed, asyncio's own loop when not."""

from __future__ import annotations

import asyncio
import sys

import pytest
import uvloop

from harmrank.common.loop import run
from harmrank.gateway import worker_main


async def _loop_type() -> type[asyncio.AbstractEventLoop]:
    return type(asyncio.get_running_loop())


def test_runs_on_uvloop_when_installed() -> None:
    assert run(_loop_type()) is uvloop.Loop


def test_falls_back_to_asyncio_without_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # makes `import uvloop` fail
    loop_type: type = run(_loop_type())
    assert issubclass(loop_type, asyncio.BaseEventLoop)
    assert not issubclass(loop_type, uvloop.Loop)


def test_returns_the_result_and_raises_the_error() -> None:
    async def fail() -> None:
        raise ValueError("inside the loop")

    assert run(asyncio.sleep(0, result=42)) == 42
    with pytest.raises(ValueError, match="inside the loop"):
        run(fail())


def test_the_worker_runs_on_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[type[asyncio.AbstractEventLoop]] = []

    async def serve(_settings: object, concurrency: int) -> None:
        assert concurrency == 3
        seen.append(await _loop_type())

    monkeypatch.setattr(worker_main, "serve", serve)
    worker_main.main(3)
    assert seen == [uvloop.Loop]
