"""Every file in examples/ is real: each run.yaml is created and run to the end through the CLI,
against a generator and a judge service configured from the example's own models.yaml and
judges.json (server addresses swapped for stand-ins speaking TGI's and each provider's wire
format), so an example that drifts from the API, the settings or the registry fails here."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.conftest import ServeApp
from tests.examples.helpers import generator_url, judge_url
from typer.testing import CliRunner

from harmrank.cli.main import app
from harmrank.cli.runs import load_spec
from harmrank.demo.flow import run_spec
from harmrank.gateway.app import create_app as create_gateway
from harmrank.gateway.runs.schemas import RunCreate
from harmrank.gateway.settings import GatewaySettings
from harmrank.metrics.app import create_app as create_metrics

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PROMPTS = "id,text,category\np1,How do plants grow?,science\np2,Name a calm colour.,art\n"


def test_the_demo_example_is_the_run_the_demo_makes() -> None:
    example = load_spec(EXAMPLES / "demo" / "run.yaml")
    assert RunCreate.model_validate(example) == RunCreate.model_validate(run_spec())


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    return result.exit_code, result.output


@pytest.mark.parametrize("example", ["study", "openai-compatible"])
def test_the_example_runs_to_the_end(serve_app: ServeApp, tmp_path: Path, example: str) -> None:
    folder = EXAMPLES / example
    settings = GatewaySettings(
        sqlite_path=tmp_path / "harmrank.db",
        migrate_on_start=True,
        generator_url=generator_url(serve_app, folder / "models.yaml"),
        judge_url=judge_url(serve_app, folder / "judges.json"),
        metrics_url=serve_app(create_metrics()),
        worker_loops=4,
        poll_interval_seconds=0.05,
    )
    gateway = ["--base-url", serve_app(create_gateway(settings))]
    prompts = tmp_path / "prompts.csv"
    prompts.write_text(PROMPTS)
    assert cli("dataset", "upload", str(prompts), "--name", "prompts", *gateway)[0] == 0
    config = str(folder / "run.yaml")
    code, output = cli("run", "create", "--config", config, "--follow", "--interval", "0.1",
                       *gateway)  # fmt: skip
    assert code == 0, output
    assert "run 1 done" in output
