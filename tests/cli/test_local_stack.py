"""``harmrank serve`` (all four services) driven by the run commands, as a user would.

The stack is a child process (its own event loop and signal handling, as on a laptop); the TGI
and provider stand-ins are served here, and the run commands run in-process with CliRunner.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from tests.cli.stack import TOKEN, LocalStack, children_of, local_stack
from tests.conftest import ServeApp, throwaway_postgres_database
from typer.testing import CliRunner

from harmrank.cli.client import Gateway
from harmrank.cli.main import app
from harmrank.cli.runs import download

PROMPTS_CSV = (
    "id,text,category\n"
    "q1,How do I bake bread?,cooking\n"
    "q2,Tell me about volcanoes.,science\n"
    'q3,"Write a poem, with commas",arts\n'
)
RUN_YAML = """\
prompts: {dataset: demo}
models:
  - {name: mistral-7b, params: {max_new_tokens: 12, seed: 7}}
  - {name: mpt-7b, params: {max_new_tokens: 12, seed: 7}}
  - {name: stablelm-alpha-7b, params: {max_new_tokens: 12, seed: 7}}
judges:
  - {name: gpt4o, orders: 2}
  - {name: claude}
metrics: {p: 0.9, resamples: 20}
"""


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_env(request: pytest.FixtureRequest) -> AsyncIterator[dict[str, str]]:
    """Nothing for the embedded SQLite default; HARMRANK_DATABASE_URL for PostgreSQL."""
    if request.param == "sqlite":
        yield {}
        return
    async with throwaway_postgres_database() as url:
        yield {"HARMRANK_DATABASE_URL": url}


@pytest.fixture
def stack(
    serve_app: ServeApp, tmp_path: Path, database_env: dict[str, str]
) -> Iterator[LocalStack]:
    with local_stack(serve_app, tmp_path, database_env) as running:
        yield running


def cli(*args: str) -> tuple[int, str]:
    env = {"HARMRANK_TOKEN": TOKEN, "COLUMNS": "200"}
    result = CliRunner().invoke(app, list(args), terminal_width=200, env=env)
    return result.exit_code, result.output


def upload(stack: LocalStack) -> None:
    response = httpx.post(
        f"{stack.url()}/v1/datasets",
        files={"file": ("prompts.csv", PROMPTS_CSV.encode(), "text/csv")},
        data={"name": "demo"},
        headers={"Authorization": f"Bearer {TOKEN}"},
        # The first upload may wait for the gateway's parsing process to finish starting.
        timeout=60,
    )
    assert response.status_code == 201, response.text


def has_route(stack: LocalStack, path: str) -> bool:
    return path in httpx.get(f"{stack.url()}/openapi.json").json()["paths"]


def test_the_local_stack_runs_a_whole_run_and_stops_on_ctrl_c(
    stack: LocalStack, tmp_path: Path
) -> None:
    banner = stack.output()
    for service in ("gateway", "generator", "judge", "metrics"):
        assert stack.url(service) in banner, banner
    upload(stack)
    config = tmp_path / "run.yaml"
    config.write_text(RUN_YAML)
    base = ("--base-url", stack.url())

    follow = ("--follow", "--interval", "0.1")
    code, output = cli("run", "create", "--config", str(config), *follow, *base)
    assert code == 0, output + stack.output()
    assert "created run 1" in output
    assert "run 1 done" in output
    assert "Harm rate" in output
    assert "gpt4o vs claude" in output
    # 3 prompts x 3 models over real HTTP to the TGI stand-ins; 3 x (2 + 1) judge calls.
    assert sum(s.state.request_count for s in stack.tgi) == 9
    assert sum(len(j.seen) for j in stack.judges) == 9

    code, output = cli("run", "status", "1", *base)
    assert code == 0, output
    assert "done" in output

    check_exports(stack, tmp_path)
    check_report(stack, tmp_path)
    # The run's score task sent its rankings to the stack's metrics service, once; fetching
    # the report (JSON and HTML) asked it for nothing more.
    assert metrics_report_calls(stack) == 1

    # The gateway's fork server and worker processes (parsing, reports) end with the stack.
    children = children_of(stack.process.pid)
    assert stack.interrupt() == 0, stack.output()
    assert not still_running(children, within_seconds=30)
    assert "stopped" in stack.output()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{stack.url('generator')}/healthz")


def export(stack: LocalStack, what: str, fmt: str, out: Path) -> tuple[int, str]:
    return cli(
        "run", "export", "1", "--what", what, "--format", fmt, "--out", str(out),
        "--base-url", stack.url(),
    )  # fmt: skip


def check_exports(stack: LocalStack, tmp_path: Path) -> None:
    responses, rankings = tmp_path / "responses.csv", tmp_path / "rankings.jsonl"
    if has_route(stack, "/v1/runs/{run_id}/responses/export"):
        assert export(stack, "responses", "csv", responses)[0] == 0
        assert export(stack, "rankings", "jsonl", rankings)[0] == 0
    else:
        # The run export routes are being added to the gateway; until they are, the command
        # must fail clearly, and its download path is checked on the dataset export routes.
        code, output = export(stack, "responses", "csv", responses)
        assert (code, "error (not_found)") == (2, output[: len("error (not_found)")])
        assert not responses.exists()
        with Gateway(stack.url()) as gateway:
            download(gateway, "/v1/datasets/demo/responses/export", {"format": "csv"}, responses)
            download(gateway, "/v1/datasets/demo/rankings/export", {"format": "jsonl"}, rankings)
    rows = list(csv.DictReader(io.StringIO(responses.read_text(encoding="utf-8"))))
    assert len(rows) == 9
    ranked = [json.loads(line) for line in rankings.read_text(encoding="utf-8").splitlines()]
    assert len(ranked) == 9


def metrics_report_calls(stack: LocalStack) -> float:
    """``POST /v1/report`` requests the metrics service answered 200, from its /metrics."""
    text = httpx.get(f"{stack.url('metrics')}/metrics").text
    wanted = ('method="POST"', 'route="/v1/report"', 'status="200"')
    lines = [line for line in text.splitlines() if line.startswith("harmrank_http_requests_total")]
    return sum(float(line.split()[-1]) for line in lines if all(w in line for w in wanted))


def check_report(stack: LocalStack, tmp_path: Path) -> None:
    out = tmp_path / "report"
    code, output = cli("report", "1", "--out", str(out), "--base-url", stack.url())
    assert code == 0, output
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert set(report["annotators"]) == {"gpt4o", "claude"}
    if has_route(stack, "/v1/runs/{run_id}/report.html"):
        assert (out / "report.html").read_text(encoding="utf-8").lstrip().startswith("<")
    else:
        assert "serves no HTML report" in " ".join(output.split())


def still_running(pids: list[int], within_seconds: float) -> list[int]:
    """Those of ``pids`` still running (not ended, not a zombie) after waiting up to
    ``within_seconds`` for them to end."""
    deadline = time.monotonic() + within_seconds
    while True:
        running = [p for p in pids if _running(p)]
        if not running or time.monotonic() > deadline:
            return running
        time.sleep(0.1)


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
