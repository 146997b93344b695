"""The client commands against a gateway that wants a token for reads too: datasets, runs,
reports, invitations, all with --token/--base-url or HARMRANK_TOKEN/HARMRANK_BASE_URL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import SecretStr
from tests.conftest import ServeApp
from tests.demo.helpers import downstreams
from typer.testing import CliRunner

from harmrank.cli.main import app
from harmrank.gateway.app import create_app as create_gateway
from harmrank.gateway.settings import GatewaySettings
from harmrank.metrics.app import create_app as create_metrics

TOKEN = "client-commands-token-7c1d"
PROMPTS = "id,text,category\np1,How do plants grow?,science\np2,Name a calm colour.,art\n"
RUN = """\
prompts: {dataset: toy}
models: [{name: small-a}, {name: small-b}]
judges: [{name: judge-x}]
"""


@pytest.fixture
def gateway(serve_app: ServeApp, tmp_path: Path) -> str:
    generator, judge = downstreams(serve_app)
    settings = GatewaySettings(
        sqlite_path=tmp_path / "harmrank.db",
        migrate_on_start=True,
        api_tokens=[SecretStr(TOKEN)],
        require_token_for_reads=True,
        generator_url=generator,
        judge_url=judge,
        metrics_url=serve_app(create_metrics()),
        worker_loops=2,
        poll_interval_seconds=0.05,
    )
    return serve_app(create_gateway(settings))


def cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200", **(env or {})})
    return result.exit_code, " ".join(result.output.split())


def test_every_client_command_sends_the_token_from_the_environment(
    gateway: str, tmp_path: Path
) -> None:
    env = {"HARMRANK_TOKEN": TOKEN, "HARMRANK_BASE_URL": gateway}
    prompts = tmp_path / "prompts.csv"
    prompts.write_text(PROMPTS)
    assert cli("dataset", "upload", str(prompts), "--name", "toy", env=env) == (
        0, "uploaded dataset 'toy': 2 prompts")  # fmt: skip
    code, output = cli("dataset", "list", env=env)
    assert code == 0
    assert "│ toy │ 2 │ upload:prompts.csv │" in output
    code, output = cli("dataset", "show", "toy", env=env)
    assert code == 0
    assert "│ categories │ art 1, science 1 │" in output
    config = tmp_path / "run.yaml"
    config.write_text(RUN)
    code, output = cli("run", "create", "--config", str(config), "--follow", "--interval", "0.1",
                       env=env)  # fmt: skip
    assert code == 0, output
    code, output = cli("run", "list", env=env)
    assert code == 0
    assert "│ toy │ small-a, small-b │ judge-x │ 2 │" in output, output
    code, output = cli("run", "list", "--json", env=env)
    assert json.loads(output)["items"][0]["id"] == 1
    assert cli("run", "status", "1", env=env)[0] == 0
    export = tmp_path / "responses.csv"
    assert cli("run", "export", "1", "--out", str(export), env=env)[0] == 0
    code, output = cli("report", "1", "--out", str(tmp_path / "r"), env=env)
    assert code == 0, output
    assert (tmp_path / "r" / "report.html").is_file()


def test_reads_without_the_token_are_refused_and_options_match_the_environment(
    gateway: str,
) -> None:
    for command in (["dataset", "list"], ["run", "list"], ["run", "status", "1"]):
        code, output = cli(*command, "--base-url", gateway)
        assert code == 2
        assert "error (unauthorized)" in output
        code, output = cli(*command, "--base-url", gateway, "--token", TOKEN)
        assert "unauthorized" not in output


def test_invitations_print_sign_in_links_not_bare_tokens(gateway: str, tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.csv"
    prompts.write_text(PROMPTS)
    options = ["--base-url", gateway, "--token", TOKEN]
    assert cli("dataset", "upload", str(prompts), "--name", "toy", *options)[0] == 0
    config = tmp_path / "run.yaml"
    config.write_text(RUN)
    # Annotators rank responses: let a run generate some first.
    code, output = cli("run", "create", "--config", str(config), "--follow", "--interval",
                       "0.1", *options)  # fmt: skip
    assert code == 0, output
    code, output = cli("annotation", "invite", "toy", "--count", "2", "--label", "x", *options)
    assert code == 0, output
    links = [word for word in output.split() if word.startswith(gateway)]
    assert len(links) == 2
    assert all(link.startswith(f"{gateway}/annotate/#token=") for link in links)
    code, output = cli("annotation", "settings", "toy", "--budget", "1", "--policy", "active",
                       "--seed", "4", *options)  # fmt: skip
    assert code == 0, output
    assert "label budget 1 items, policy active, seed 4, floor 0.2" in output
    assert "drawn for humans: " in output
    code, output = cli("annotation", "settings", "toy", "--k", "2", *options)
    assert code == 0, output
    assert "k 2;" in output
    assert "policy active, seed 4" in output  # the settings not given stay
    code, output = cli("annotation", "settings", "toy", "--floor", "0", *options)
    assert code != 0
    assert "floor" in output
    code, output = cli("annotation", "settings", "toy", "--every-item", "--policy", "uniform",
                       *options)  # fmt: skip
    assert code == 0, output
    assert "label budget every item, policy uniform" in output


def test_version() -> None:
    code, output = cli("--version")
    assert code == 0
    assert output.startswith("harmrank 0.")


def test_smoke_reads_the_same_variables(gateway: str) -> None:
    env = {"HARMRANK_TOKEN": TOKEN, "HARMRANK_BASE_URL": gateway}
    models = [
        "--models",
        "small-a",
        "--models",
        "small-b",
        "--judges",
        "judge-x",
        "--judges",
        "judge-y",
    ]
    code, output = cli("smoke", *models, "--timeout", "120", env=env)
    assert code == 0, output
    assert "PASS" in output
