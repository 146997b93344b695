"""The judge service's fan-out: a lone call runs in the request's own task (a task more cost
two turns of the event loop, milliseconds under load); several run at once, in order."""

from __future__ import annotations

import asyncio

import pytest

from harmrank.judge.service import _together


async def _task_and(value: int) -> tuple[asyncio.Task[object] | None, int]:
    await asyncio.sleep(0)
    return asyncio.current_task(), value


async def test_a_lone_call_runs_in_the_callers_task() -> None:
    [(task, value)] = await _together([_task_and(7)])
    assert task is asyncio.current_task()
    assert value == 7


async def test_several_calls_run_at_once_and_answer_in_order() -> None:
    met = asyncio.Event()

    async def waits() -> str:
        await met.wait()  # one after another, this would wait for ever
        return "waited"

    async def meets() -> str:
        met.set()
        return "met"

    found = await asyncio.wait_for(_together([waits(), meets()]), timeout=30)
    assert found == ["waited", "met"]


async def test_a_lone_calls_error_is_raised_as_itself() -> None:
    async def fails() -> int:
        raise LookupError("no such judge")

    with pytest.raises(LookupError, match="no such judge"):
        await _together([fails()])
