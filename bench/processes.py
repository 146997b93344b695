"""Helpers of the process-level benchmarks: start harmrank and stand-ins as subprocesses,
wait for them, read their peak memory, stop them."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
HARMRANK = str(Path(sys.executable).with_name("harmrank"))
TOKEN = "bench-write-token"
"""The write token of the gateways ``serve_gateway`` starts."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def peak_rss_mb(pid: int) -> float:
    """VmHWM: the most resident memory the process ever had."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def descendants(pid: int) -> list[int]:
    """The process and every process under it (uvicorn's worker processes, say)."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            with contextlib.suppress(OSError):  # the process ended meanwhile
                pending += [int(c) for c in (task / "children").read_text().split()]
    return found


def cpu_seconds(pid: int) -> float:
    """User and system CPU time the process has used so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    url: str | None = None

    def peak_rss_mb(self) -> float:
        """The largest peak of the process and of each process under it."""
        return max(peak_rss_mb(pid) for pid in descendants(self.popen.pid))

    def cpu_seconds(self) -> float:
        """CPU time used so far by the process and the processes under it now."""
        return sum(cpu_seconds(pid) for pid in descendants(self.popen.pid))


@dataclass
class Processes:
    """Every process a benchmark started, stopped (SIGTERM, then SIGKILL) at the end."""

    logs: Path
    started: list[Process] = field(default_factory=list)

    def start(
        self, name: str, command: list[str], env: dict[str, str], port: int | None
    ) -> Process:
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("HARMRANK_")}
        full_env |= {"PYTHONPATH": str(ROOT), **env}
        log = (self.logs / f"{name}.log").open("wb")
        popen = subprocess.Popen(
            command, env=full_env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT
        )
        process = Process(name, popen, f"http://127.0.0.1:{port}" if port else None)
        self.started.append(process)
        if port is not None:
            wait_listening(process)
        return process

    def standin(self, kind: str, name: str, *options: str) -> Process:
        port = free_port()
        command = [
            sys.executable,
            str(ROOT / "bench" / "serve_standin.py"),
            kind,
            "--port",
            str(port),
        ]
        return self.start(name, [*command, *options], {}, port)

    def serve(self, service: str, env: dict[str, str], *options: str) -> Process:
        port = free_port()
        command = [HARMRANK, "serve", service, "--port", str(port), *options]
        return self.start(service, command, env, port)

    def stop_all(self) -> None:
        for process in reversed(self.started):
            if process.popen.poll() is None:
                process.popen.terminate()
        for process in reversed(self.started):
            try:
                process.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.popen.kill()


def wait_listening(process: Process, timeout: float = 60) -> None:
    assert process.url is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise RuntimeError(f"{process.name} exited with {process.popen.returncode}")
        try:
            httpx.get(process.url + "/", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"{process.name} did not start listening")


def stack_gateway_env(
    db_url: str, generator: Process, judge: Process, metrics: Process
) -> dict[str, str]:
    """The settings of the gateway and workers of a whole stack (a run through every service):
    its database, the services' URLs, writes needing ``TOKEN``, quiet logs, a 0.2 s poll."""
    return {
        "HARMRANK_GATEWAY_DATABASE_URL": db_url,
        "HARMRANK_GATEWAY_GENERATOR_URL": str(generator.url),
        "HARMRANK_GATEWAY_JUDGE_URL": str(judge.url),
        "HARMRANK_GATEWAY_METRICS_URL": str(metrics.url),
        "HARMRANK_GATEWAY_API_TOKENS": json.dumps([TOKEN]),
        "HARMRANK_GATEWAY_LOG_LEVEL": "warning",
        "HARMRANK_GATEWAY_POLL_INTERVAL_SECONDS": "0.2",
    }


@contextlib.asynccontextmanager
async def serve_gateway(
    name: str, *options: str, env: dict[str, str] | None = None
) -> AsyncIterator[tuple[Process, str]]:
    """``harmrank serve gateway`` (with ``options``) on a throwaway database of the tests'
    PostgreSQL server, migrated at start, writes needing ``TOKEN``; answers the process and the
    database URL, and stops the one and drops the other after. Logs go to a temporary folder
    named after ``name``."""
    # Here, not at the top: only the gateway benchmarks need the tests' helpers (and the
    # script has made them importable, see repo_tests).
    from tests.conftest import throwaway_postgres_database

    procs = Processes(Path(tempfile.mkdtemp(prefix=f"harmrank-{name}-")))
    async with throwaway_postgres_database() as db_url:
        try:
            settings = {
                "HARMRANK_GATEWAY_DATABASE_URL": db_url,
                "HARMRANK_GATEWAY_MIGRATE_ON_START": "true",
                "HARMRANK_GATEWAY_API_TOKENS": json.dumps([TOKEN]),
                "HARMRANK_GATEWAY_LOG_LEVEL": "warning",
            }
            yield procs.serve("gateway", settings | (env or {}), *options), db_url
        finally:
            procs.stop_all()


def fresh_metrics_report(body: bytes, prefix: str) -> str:
    """``body`` sent as ``POST /v1/report`` to a metrics service of its own (so its peak memory
    is this request's), as a run's score task sends it: what it answered, in how long, and the
    service's peak RSS. A caller's PYTHONPATH (sources ahead of the installed ones) is kept."""
    procs = Processes(Path(tempfile.mkdtemp(prefix=prefix)))
    try:
        env = {"HARMRANK_METRICS_LOG_LEVEL": "warning"}
        if os.environ.get("PYTHONPATH"):
            env["PYTHONPATH"] = os.pathsep.join([os.environ["PYTHONPATH"], str(ROOT)])
        metrics = procs.serve("metrics", env)
        started = time.perf_counter()
        answer = httpx.post(
            f"{metrics.url}/v1/report",
            content=body,
            headers={"Content-Type": "application/json"},
            timeout=600,
        )
        took = time.perf_counter() - started
        said = "" if answer.is_success else f" {answer.text[:300]}"
        return (
            f"metrics answered {answer.status_code} in {took:.2f} s; "
            f"peak RSS {metrics.peak_rss_mb():.0f} MB{said}"
        )
    finally:
        procs.stop_all()
