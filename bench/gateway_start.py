"""What a gateway costs to start, and what its first upload and first reports cost, in CPU.

Run: ``uv run python bench/gateway_start.py``. Starts ``harmrank serve gateway`` on a fresh
database of the tests' PostgreSQL server, waits until it listens and then until its processes
(the gateway, the fork server of its worker processes, the workers) use no more CPU, and prints
the CPU seconds each used; then the same after a small upload (a parsing worker starts), after
a first HTML dataset report (a report worker starts) and after a second one (same worker, its
imports kept). CPU seconds, unlike latencies, hardly depend on what else the machine runs.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Awaitable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from hostile_load import REPORT, REPORT_PARAMS, seed
from http_load import run
from processes import TOKEN, Process, cpu_seconds, descendants, serve_gateway

SETTLED = 0.05
"""CPU seconds the processes may use in ``QUIET`` seconds and still count as idle."""
QUIET = 3.0
BUSY_AT_MOST = 120.0
"""Seconds to wait for the processes to become idle."""


async def settle(gateway: Process) -> dict[int, float]:
    """Once the processes are idle: CPU seconds by pid."""
    deadline = time.monotonic() + BUSY_AT_MOST
    before = sum(gateway_cpu(gateway).values())
    while time.monotonic() < deadline:
        await asyncio.sleep(QUIET)
        now = gateway_cpu(gateway)
        if sum(now.values()) - before < SETTLED:
            return now
        before = sum(now.values())
    raise RuntimeError(f"the gateway's processes were still busy after {BUSY_AT_MOST} s")


def gateway_cpu(gateway: Process) -> dict[int, float]:
    return {pid: cpu_seconds(pid) for pid in descendants(gateway.popen.pid)}


def show(
    title: str, seconds: float | None, before: dict[int, float], after: dict[int, float]
) -> None:
    took = f" (answered in {seconds:.2f} s)" if seconds is not None else ""
    print(f"{title}{took}: {sum(after.values()) - sum(before.values()):.2f} CPU s")
    for pid, used in after.items():
        added = used - before.get(pid, 0.0)
        if added >= 0.01:
            name = Path(f"/proc/{pid}/comm").read_text().strip()
            nice = os.getpriority(os.PRIO_PROCESS, pid)
            print(f"  pid {pid} ({name}, nice {nice}): {added:.2f} s")


async def timed(call: Awaitable[httpx.Response]) -> tuple[float, httpx.Response]:
    began = time.monotonic()
    answer = await call
    answer.raise_for_status()
    return time.monotonic() - began, answer


async def main() -> None:
    began = time.monotonic()
    async with serve_gateway("start") as (gateway, db_url):
        assert gateway.url is not None
        listening = time.monotonic() - began
        started = await settle(gateway)
        show("start, until idle", listening, {}, started)
        await seed(db_url)
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(base_url=gateway.url, headers=headers, timeout=300) as http:
            files = {"file": ("p.csv", b"text\nfirst prompt\nsecond prompt\n", "text/csv")}
            upload = http.post("/v1/datasets", files=files, data={"name": "small"})
            seconds, _ = await timed(upload)
            uploaded = await settle(gateway)
            show("first upload (2 prompts)", seconds, started, uploaded)
            previous = uploaded
            for ordinal, report_seed in (("first", 1), ("second", 2)):
                params = REPORT_PARAMS | {"format": "html", "seed": report_seed, "resamples": 100}
                seconds, _ = await timed(http.get(REPORT, params=params))
                done = await settle(gateway)
                show(f"{ordinal} HTML report (100 resamples)", seconds, previous, done)
                previous = done


if __name__ == "__main__":
    run(main)
