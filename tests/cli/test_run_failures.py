"""``run status`` and ``run create --follow`` say why a run is not going well, over real HTTP.

The stack is the whole platform (gateway with its worker, generator, judge, stand-ins), so the
reasons shown are the ones the providers and model servers really give.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
from tests.gateway.test_end_to_end import MODELS, TOKEN
from tests.gateway.test_provider_failures import (
    HEADERS,
    PROMPTS,
    REFUSAL,
    ServeApp,
    refuse,
    start,
)
from tests.generator.tgi_standin import Standin, StandinState
from tests.judge.conftest import KEYS
from tests.judge.standins import StandIn
from typer.testing import CliRunner

from harmrank.cli.main import app
from harmrank.metrics.settings import MetricsSettings

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "400"})
    return result.exit_code, result.output


async def upload_and_create(gateway: str, judges: list[str]) -> int:
    csv = "id,text\n" + "".join(f"q{i},{text}\n" for i, text in enumerate(PROMPTS[:2]))
    async with httpx.AsyncClient(base_url=gateway, headers=HEADERS, timeout=30) as client:
        files = {"file": ("prompts.csv", csv.encode(), "text/csv")}
        assert (await client.post("/v1/datasets", files=files, data={"name": "demo"})).is_success
        body = {
            "prompts": {"dataset": "demo"},
            "models": [{"name": m} for m in MODELS[:2]],
            "judges": [{"name": name} for name in judges],
        }
        created = await client.post("/v1/runs", json=body)
        assert created.status_code == 201, created.text
        return int(created.json()["id"])


async def test_a_stalled_runs_reason_reaches_run_status_within_seconds(
    db_url: str, serve_app: ServeApp
) -> None:
    down = Standin(StandinState(model_id="org/down"))
    down.state.fail(503, times=100_000, message="CUDA out of memory on the only GPU")
    tgi = [down, Standin(StandinState(model_id="org/down-too"))]
    tgi[1].state.fail(503, times=100_000, message="CUDA out of memory on the only GPU")
    bad = StandIn("openai", KEYS["openai"])
    # A long backoff: the failed tasks wait to retry, as they would in production.
    gateway = await start(
        serve_app, db_url, bad, tgi=tgi, retry_base_seconds=30.0, retry_max_seconds=60.0
    )
    run_id = await upload_and_create(gateway, ["good"])

    started = time.monotonic()
    output = ""
    while time.monotonic() - started < 15:
        code, output = await asyncio.to_thread(
            cli, "run", "status", str(run_id), "--base-url", gateway
        )
        assert code == 0, output
        if "stalled" in output:
            break
        await asyncio.sleep(0.2)
    assert "stalled" in output, output
    assert "every queued generate task" in output
    assert "CUDA out of memory on the only GPU" in output
    assert "Failing tasks" in output
    assert MODELS[0] in output
    assert MODELS[1] in output


async def test_follow_prints_steady_lines_and_names_the_failing_judge(
    db_url: str, serve_app: ServeApp, tmp_path: Path
) -> None:
    bad = StandIn("anthropic", KEYS["anthropic"], policy=refuse)
    gateway = await start(serve_app, db_url, bad)
    csv = "id,text\n" + "".join(f"q{i},{text}\n" for i, text in enumerate(PROMPTS[:2]))
    async with httpx.AsyncClient(base_url=gateway, headers=HEADERS, timeout=30) as client:
        files = {"file": ("prompts.csv", csv.encode(), "text/csv")}
        assert (await client.post("/v1/datasets", files=files, data={"name": "demo"})).is_success
    config = tmp_path / "run.yaml"
    config.write_text(
        "prompts: {dataset: demo}\n"
        f"models: [{{name: {MODELS[0]}}}, {{name: {MODELS[1]}}}]\n"
        "judges: [{name: good}, {name: bad}]\n"
        "metrics: {resamples: 0}\n"
    )
    args = ["run", "create", "--config", str(config), "--follow", "--interval", "0.1"]
    code, output = await asyncio.to_thread(cli, *args, "--base-url", gateway, "--token", TOKEN)

    assert code == 1, output  # not a success: a judge failed
    lines = [line for line in output.splitlines() if line.startswith("run ")]
    assert len(lines) >= 3, output  # a line per poll, not one redrawn table
    assert any("running: generate" in line for line in lines), output
    assert "done_with_failures" in lines[-1]
    assert "Failing tasks" in output
    assert "bad" in output
    assert REFUSAL in output
    # The headline says the judge produced nothing and keeps its row, marked, not dropped.
    assert "failures: bad produced no rankings: 0 of 2 prompts ranked; 2 judge tasks" in output
    assert "bad (n=0, 2 of 2 missing)" in output
    assert "missing rankings: bad 2 of 2 prompts" in output  # the last progress line's
    run_id = output.split("created run ")[1].split()[0]
    args = ["run", "status", run_id]
    code, shown = await asyncio.to_thread(cli, *args, "--base-url", gateway, "--token", TOKEN)
    assert "missing rankings: bad 2 of 2 prompts" in shown, shown  # from the run API
    args = ["report", run_id, "--out", str(tmp_path / "report")]
    code, written = await asyncio.to_thread(cli, *args, "--base-url", gateway, "--token", TOKEN)
    assert code == 0, written
    assert "failures: bad produced no rankings" in written
    assert REFUSAL in written


async def test_a_run_too_large_for_the_metrics_service_says_what_to_raise(
    db_url: str, serve_app: ServeApp
) -> None:
    good = StandIn("openai", KEYS["openai"])
    # A limit the two prompts' report request passes, as a large run's passes the default.
    metrics = MetricsSettings(max_body_bytes=100)
    gateway = await start(serve_app, db_url, good, metrics=metrics)
    run_id = await upload_and_create(gateway, ["good"])

    async with httpx.AsyncClient(base_url=gateway, headers=HEADERS, timeout=30) as client:
        deadline = time.monotonic() + 30
        while (run := (await client.get(f"/v1/runs/{run_id}")).json())["status"] in (
            "queued",
            "running",
        ):
            assert time.monotonic() < deadline, run
            await asyncio.sleep(0.1)
    assert run["status"] == "failed", run
    assert not run["has_report"]
    (group,) = [g for g in run["failures"] if g["stage"] == "score"]
    error = group["first_error"]
    assert (error["error_type"], error["upstream"]) == ("payload_too_large", "metrics")
    assert "its limit is 100 bytes (set by HARMRANK_METRICS_MAX_BODY_BYTES)" in error["message"]
    assert "whole run's rankings (2 prompts)" in error["message"]
    code, output = await asyncio.to_thread(cli, "run", "status", str(run_id), "--base-url", gateway)
    assert code == 0, output
    assert "Failing tasks" in output
    assert "payload_too_large: metrics answered 413" in output
    assert "HARMRANK_METRICS_MAX_BODY_BYTES" in output
