"""The run commands' errors: a bad config names its field, the gateway's errors are shown as
``error (error_type): message`` with exit status 2, and an unreachable gateway is named."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr
from tests.conftest import ServeApp, free_port
from typer.testing import CliRunner

from harmrank.cli.main import app
from harmrank.gateway.app import create_app as create_gateway
from harmrank.gateway.settings import GatewaySettings

TOKEN = "cli-error-tests-token"
VALID = """\
prompts: {dataset: demo}
models: [{name: a}, {name: b}]
judges: [{name: j}]
"""


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    return result.exit_code, " ".join(result.output.split())


@pytest.fixture
def gateway(serve_app: ServeApp, tmp_path: Path) -> str:
    """A gateway on SQLite (the error paths do not depend on the database), migrated at start."""
    settings = GatewaySettings(
        sqlite_path=tmp_path / "harmrank.db",
        migrate_on_start=True,
        api_tokens=[SecretStr(TOKEN)],
    )
    return serve_app(create_gateway(settings))


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("models: [{name: a}, {name: b}]\njudges: [{name: j}]\n", "prompts: Field required"),
        (VALID.replace("[{name: a}, {name: b}]", "[{name: a}]"), "models: List should have"),
        (VALID + "metrics: {p: 1.5}\n", "metrics.p: Input should be less than 1"),
        (VALID.replace("{name: j}", "{name: j, orders: x}"), "judges.0.orders:"),
        (VALID + "extra: 1\n", "extra: Extra inputs are not permitted"),
    ],
)
def test_an_invalid_config_names_the_field(tmp_path: Path, text: str, named: str) -> None:
    config = write(tmp_path, "run.yaml", text)
    # No gateway listens there: the config is refused before any request.
    code, output = cli("run", "create", "--config", str(config), "--base-url", "http://127.0.0.1:9")
    assert code == 2
    assert "error (bad_config)" in output
    assert named in output


def test_a_json_config_and_unparsable_files_are_read_or_refused_clearly(tmp_path: Path) -> None:
    bad_json = write(tmp_path, "run.json", '{"prompts": ')
    code, output = cli("run", "create", "--config", str(bad_json))
    assert code == 2
    assert "not valid JSON" in output
    code, output = cli("run", "create", "--config", str(tmp_path / "missing.yaml"))
    assert code == 2
    assert "cannot read" in output


def test_an_unknown_run_is_the_gateways_error_with_exit_code_2(gateway: str) -> None:
    for command in (["status"], ["cancel", "--token", TOKEN], ["resume", "--token", TOKEN]):
        code, output = cli("run", command[0], "424242", *command[1:], "--base-url", gateway)
        assert code == 2, output
        assert "error (not_found): no run 424242" in output


def test_report_of_an_unknown_run_writes_nothing(gateway: str, tmp_path: Path) -> None:
    out = tmp_path / "report"
    code, output = cli("report", "424242", "--out", str(out), "--base-url", gateway)
    assert code == 2
    assert "error (not_found): no run 424242" in output
    assert not out.exists()


def test_writes_without_the_token_are_refused_by_the_gateway(gateway: str, tmp_path: Path) -> None:
    config = write(tmp_path, "run.yaml", VALID)
    code, output = cli("run", "create", "--config", str(config), "--base-url", gateway)
    assert code == 2
    assert "error (unauthorized)" in output


def test_a_run_of_an_unknown_dataset_is_the_gateways_error(gateway: str, tmp_path: Path) -> None:
    config = write(tmp_path, "run.json", '{"prompts": {"dataset": "nope"}, "models": '
                   '[{"name": "a"}, {"name": "b"}], "judges": [{"name": "j"}]}')  # fmt: skip
    code, output = cli("run", "create", "--config", str(config), "--base-url", gateway,
                       "--token", TOKEN)  # fmt: skip
    assert code == 2
    assert "error (" in output
    assert "nope" in output


def test_an_unreachable_gateway_is_named(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    for args in (["run", "status", "1"], ["report", "1", "--out", str(tmp_path / "r")]):
        code, output = cli(*args, "--base-url", url)
        assert code == 2, output
        assert f"error (unreachable): cannot connect to the gateway at {url}" in output
