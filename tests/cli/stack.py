"""The local stack (``harmrank serve``) as a child process, pointed at stand-ins served here."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from tests.conftest import ServeApp, free_port
from tests.generator.helpers import FAST_RETRY
from tests.generator.tgi_standin import Standin, StandinState
from tests.judge.conftest import KEYS
from tests.judge.standins import StandIn, prefer_position

SERVICES = ("gateway", "generator", "judge", "metrics")
MODELS = ("mistral-7b", "mpt-7b", "stablelm-alpha-7b")
TOKEN = "cli-test-token-3f9a"
STARTUP_SECONDS = 60.0


@dataclass
class LocalStack:
    process: subprocess.Popen[bytes]
    ports: dict[str, int]
    log: Path
    tgi: list[Standin]
    judges: list[StandIn]

    def url(self, service: str = "gateway") -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def interrupt(self, within: float = 30.0) -> int:
        """SIGINT, as Ctrl-C sends; the exit status."""
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(within)


def standin_environment(serve_app: ServeApp) -> tuple[dict[str, str], list[Standin], list[StandIn]]:
    """Settings that point the generator at TGI stand-ins and the judge at provider stand-ins."""
    tgi = [Standin(StandinState(model_id=f"org/{name}")) for name in MODELS]
    models = [
        {"name": name, "base_url": serve_app(s.app), "prompt_template": "{prompt}\n"}
        for name, s in zip(MODELS, tgi, strict=True)
    ]
    openai = StandIn("openai", KEYS["openai"], policy=prefer_position(0))
    anthropic = StandIn("anthropic", KEYS["anthropic"], policy=prefer_position(2))
    judges = [
        {"name": name, "provider": s.provider, "model": "m", "base_url": serve_app(s.app())}
        for name, s in (("gpt4o", openai), ("claude", anthropic))
    ]
    env = {
        "HARMRANK_GENERATOR_MODELS": json.dumps(models),
        "HARMRANK_GENERATOR_RETRY": FAST_RETRY.model_dump_json(),
        "HARMRANK_JUDGE_JUDGES": json.dumps(judges),
        "HARMRANK_JUDGE_OPENAI_API_KEY": KEYS["openai"],
        "HARMRANK_JUDGE_ANTHROPIC_API_KEY": KEYS["anthropic"],
    }
    return env, tgi, [openai, anthropic]


def _environment(extra: dict[str, str], ports: dict[str, int], workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HARMRANK_")}
    env |= {f"HARMRANK_{s.upper()}_PORT": str(p) for s, p in ports.items()}
    env |= {
        "HARMRANK_GATEWAY_SQLITE_PATH": str(workdir / "harmrank.db"),
        "HARMRANK_GATEWAY_API_TOKENS": json.dumps([TOKEN]),
        "HARMRANK_GATEWAY_POLL_INTERVAL_SECONDS": "0.05",
        "HARMRANK_GATEWAY_RETRY_BASE_SECONDS": "0.05",
        "HARMRANK_GATEWAY_RETRY_MAX_SECONDS": "0.2",
        "HARMRANK_GATEWAY_LOG_LEVEL": "warning",
        "COLUMNS": "200",
    }
    return env | extra


def wait_until_ready(stack: LocalStack) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    pending = set(SERVICES)
    while pending:
        if stack.process.poll() is not None:
            raise AssertionError(f"the stack exited early:\n{stack.output()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"not ready: {sorted(pending)}\n{stack.output()}")
        for service in sorted(pending):
            try:
                if httpx.get(f"{stack.url(service)}/readyz", timeout=1).status_code == 200:
                    pending.discard(service)
            except httpx.TransportError:
                pass
        time.sleep(0.1)


@contextmanager
def local_stack(serve_app: ServeApp, workdir: Path, extra: dict[str, str]) -> Iterator[LocalStack]:
    """``harmrank serve`` in a child process, ready; killed at the end if it is still running."""
    env, tgi, judges = standin_environment(serve_app)
    ports = {service: free_port() for service in SERVICES}
    log = workdir / "stack.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "harmrank.cli.main", "serve"],
            env=_environment(env | extra, ports, workdir),
            cwd=workdir,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    stack = LocalStack(process, ports, log, tgi, judges)
    try:
        wait_until_ready(stack)
        yield stack
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def children_of(pid: int) -> list[int]:
    """Pids whose parent is ``pid`` (from /proc: no third-party process library needed)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found
