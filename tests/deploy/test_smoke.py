"""``harmrank smoke`` against a running stack: it passes on a healthy one and says why it fails.

First against the in-process stack (uvicorn threads, as the end-to-end test), then against
separate processes started the way a deployment starts them: ``harmrank migrate``,
``harmrank serve generator|judge|gateway`` and ``harmrank worker``, with the TGI and provider
stand-ins on loopback and a real PostgreSQL database.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import LiveServer, free_port
from tests.deploy.conftest import FinishedRun
from tests.deploy.stack import JUDGES, MODELS, TOKEN, postgres_database
from tests.generator.tgi_standin import Standin, StandinState
from tests.judge.conftest import KEYS
from tests.judge.standins import StandIn, prefer_position

from harmrank.cli.smoke import progress_line, smoke


def run_smoke(
    base_url: str, token: str | None = TOKEN, timeout: float = 60, **options: Any
) -> tuple[int, list[str]]:
    lines: list[str] = []
    code = smoke(base_url, token, timeout, echo=lines.append, **options)
    return code, lines


def test_smoke_passes_on_a_healthy_stack(finished_run: FinishedRun) -> None:
    code, lines = run_smoke(finished_run.stack.gateway, judges=list(JUDGES))
    assert code == 0, lines
    assert lines[0].startswith(f"gateway {finished_run.stack.gateway} is ready")
    assert any(line.startswith("done: generate 9/9 judge 6/6 score 1/1") for line in lines)
    assert lines[-1].startswith("PASS: run ")


def test_smoke_discovers_models_and_judges(finished_run: FinishedRun) -> None:
    stack = finished_run.stack
    code, lines = run_smoke(stack.gateway, generator_url=stack.generator, judge_url=stack.judge)
    assert code == 0, lines
    assert f"models {list(MODELS)}, judges {list(JUDGES)}" in lines[0]


def test_smoke_fails_without_the_write_token(finished_run: FinishedRun) -> None:
    code, lines = run_smoke(finished_run.stack.gateway, token=None, judges=list(JUDGES))
    assert code == 1
    assert lines[-1].startswith("FAIL: upload: HTTP 401")


def test_smoke_fails_when_a_single_judge_gives_no_agreement(finished_run: FinishedRun) -> None:
    code, lines = run_smoke(finished_run.stack.gateway, judges=["gpt4o"])
    assert code == 1
    assert (
        lines[-1]
        == "FAIL: the report has no agreement figures (agreement needs two judges or more)"
    )


def test_smoke_fails_when_a_stage_fails(finished_run: FinishedRun) -> None:
    code, lines = run_smoke(finished_run.stack.gateway, judges=["gpt4o", "no-such-judge"])
    assert code == 1
    assert lines[-1].startswith("FAIL: ")
    assert "failed" in lines[-1] or "HTTP 4" in lines[-1]


def test_smoke_fails_when_the_run_takes_too_long(finished_run: FinishedRun) -> None:
    code, lines = run_smoke(finished_run.stack.gateway, timeout=0, judges=list(JUDGES))
    assert code == 1
    assert "did not finish within 0 s" in lines[-1]


def test_smoke_fails_without_judges_or_gateway() -> None:
    code, lines = run_smoke("http://127.0.0.1:9", judges=None)
    assert (code, lines) == (1, ["FAIL: no judges: pass --judges, or --judge-url to discover them"])
    code, lines = run_smoke(f"http://127.0.0.1:{free_port()}", judges=list(JUDGES))
    assert code == 1
    assert lines[-1].startswith("FAIL: ")


def test_progress_line_counts_succeeded_of_all() -> None:
    progress = {"generate": {"done": 2, "reused": 1, "queued": 3}, "judge": {"failed": 1}}
    assert progress_line(progress) == "generate 3/6 judge 0/1 score 0/0"


# --- separate processes -------------------------------------------------------------------


def harmrank(*args: str) -> list[str]:
    return [sys.executable, "-m", "harmrank.cli.main", *args]


def wait_ready(url: str, processes: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert all(p.poll() is None for p in processes), "a service exited; see its log"
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not become ready")


@pytest.fixture
def standins() -> Iterator[dict[str, str]]:
    servers = {
        f"tgi:{m}": LiveServer(Standin(StandinState(model_id=f"org/{m}")).app) for m in MODELS
    }
    servers["openai"] = LiveServer(
        StandIn("openai", KEYS["openai"], policy=prefer_position(0)).app()
    )
    anthropic = StandIn("anthropic", KEYS["anthropic"], policy=prefer_position(2))
    servers["anthropic"] = LiveServer(anthropic.app())
    for server in servers.values():
        server.start()
    yield {name: server.url for name, server in servers.items()}
    for server in servers.values():
        server.stop()


def service_env(database_url: str, urls: dict[str, str], ports: dict[str, int]) -> dict[str, str]:
    models = [
        {
            "name": m,
            "base_url": urls[f"tgi:{m}"],
            "mode": "generate",
            "prompt_template": "{prompt}\n",
        }
        for m in MODELS
    ]
    judges = [
        {"name": "gpt4o", "provider": "openai", "model": "gpt-4o", "base_url": urls["openai"]},
        {
            "name": "claude",
            "provider": "anthropic",
            "model": "claude",
            "base_url": urls["anthropic"],
        },
    ]
    return {
        **os.environ,
        "HARMRANK_DATABASE_URL": database_url,
        "HARMRANK_GENERATOR_MODELS": json.dumps(models),
        "HARMRANK_GENERATOR_RETRY": '{"base_delay_seconds": 0.01, "max_delay_seconds": 0.05}',
        "HARMRANK_JUDGE_JUDGES": json.dumps(judges),
        "HARMRANK_JUDGE_OPENAI_API_KEY": KEYS["openai"],
        "HARMRANK_JUDGE_ANTHROPIC_API_KEY": KEYS["anthropic"],
        "HARMRANK_GATEWAY_GENERATOR_URL": f"http://127.0.0.1:{ports['generator']}",
        "HARMRANK_GATEWAY_JUDGE_URL": f"http://127.0.0.1:{ports['judge']}",
        "HARMRANK_GATEWAY_METRICS_URL": f"http://127.0.0.1:{ports['metrics']}",
        "HARMRANK_GATEWAY_API_TOKENS": json.dumps([TOKEN]),
        "HARMRANK_GATEWAY_POLL_INTERVAL_SECONDS": "0.1",
        "HARMRANK_GATEWAY_RETRY_BASE_SECONDS": "0.1",
        "HARMRANK_GATEWAY_RETRY_MAX_SECONDS": "0.5",
    }


def test_smoke_passes_against_harmrank_serve_processes(
    standins: dict[str, str], tmp_path: Path
) -> None:
    ports = {name: free_port() for name in ("generator", "judge", "metrics", "gateway")}
    with postgres_database(migrate=False) as database_url:
        env = service_env(database_url, standins, ports)
        migrated = subprocess.run(harmrank("migrate"), env=env, capture_output=True, text=True)
        assert migrated.returncode == 0, migrated.stderr
        commands = {
            name: harmrank("serve", name, "--port", str(port)) for name, port in ports.items()
        }
        commands["worker"] = harmrank("worker", "--concurrency", "2")
        processes: list[subprocess.Popen[bytes]] = []
        try:
            for name, command in commands.items():
                with (tmp_path / f"{name}.log").open("wb") as log:
                    processes.append(subprocess.Popen(command, env=env, stdout=log, stderr=log))
            for port in ports.values():
                wait_ready(f"http://127.0.0.1:{port}", processes)
            # The command a user's CI runs, through the installed entry point.
            judge_options = [option for j in JUDGES for option in ("--judges", j)]
            gateway = f"http://127.0.0.1:{ports['gateway']}"
            command = harmrank("smoke", "--base-url", gateway, "--token", TOKEN, *judge_options)
            result = subprocess.run(command, env=env, capture_output=True, text=True)
            assert result.returncode == 0, (result.stdout, (tmp_path / "worker.log").read_text())
            assert result.stdout.splitlines()[-1].startswith("PASS: run ")
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(timeout=20)
