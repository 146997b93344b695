"""The README's quickstart, command by command: the demo as written (a subprocess through
``uv run``), then the real-servers block against services configured from the files it names,
with stand-ins at the servers' addresses."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from pydantic import SecretStr
from tests.conftest import ServeApp
from tests.examples.helpers import generator_url, judge_url
from typer.testing import CliRunner

from harmrank.cli.main import app
from harmrank.gateway.app import create_app as create_gateway
from harmrank.gateway.settings import GatewaySettings
from harmrank.metrics.app import create_app as create_metrics

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = "id,text,category\np1,How do plants grow?,science\np2,Name a calm colour.,art\n"


def quickstart_blocks() -> list[list[str]]:
    """The ``sh`` blocks of the quickstart section, as commands (continuations joined, comments
    dropped)."""
    text = (ROOT / "README.md").read_text()
    section = text.split("### Quickstart", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.DOTALL)
    commands = []
    for block in blocks:
        joined = block.replace("\\\n", " ")
        lines = [line.split("#", 1)[0].strip() for line in joined.splitlines()]
        commands.append([line for line in lines if line])
    return commands


def test_the_quickstart_is_two_blocks_that_start_with_the_demo() -> None:
    demo, real = quickstart_blocks()
    assert demo == ["uv run harmrank demo"]
    assert any(line.startswith("uv run harmrank serve") for line in real)


def test_the_quickstart_demo_runs_as_written(tmp_path: Path) -> None:
    uv = shutil.which("uv") or str(Path.home() / ".local" / "bin" / "uv")
    if not Path(uv).exists():
        pytest.skip("uv is not installed")
    (command,) = quickstart_blocks()[0]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HARMRANK_", "VIRTUAL_ENV"))}
    done = subprocess.run(
        [uv, *shlex.split(command)[1:]],
        cwd=tmp_path,  # demo-out/ is made where the user stands
        env=env | {"UV_PROJECT": str(ROOT), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "demo-out" / "report.html").is_file()
    assert (tmp_path / "demo-out" / "report.json").is_file()


def test_the_real_servers_block_runs_against_stand_ins(
    serve_app: ServeApp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exports: dict[str, str] = {}
    commands: list[list[str]] = []
    for line in quickstart_blocks()[1]:
        words = shlex.split(line.rstrip("&"))
        if words[0] == "export":
            exports |= dict(word.split("=", 1) for word in words[1:])
        else:
            assert words[:3] == ["uv", "run", "harmrank"], line
            commands.append(words[3:])
    assert commands[0] == ["serve"]  # the test serves the services itself, as configured
    settings = GatewaySettings(
        sqlite_path=tmp_path / "harmrank.db",
        migrate_on_start=True,
        api_tokens=[SecretStr("readme-token")],
        generator_url=generator_url(serve_app, ROOT / exports["HARMRANK_GENERATOR_MODELS_FILE"]),
        judge_url=judge_url(serve_app, ROOT / exports["HARMRANK_JUDGE_JUDGES_FILE"]),
        metrics_url=serve_app(create_metrics()),
        worker_loops=4,
        poll_interval_seconds=0.05,
    )
    gateway = serve_app(create_gateway(settings))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    (tmp_path / "prompts.csv").write_text(PROMPTS)
    env = {"HARMRANK_BASE_URL": gateway, "HARMRANK_TOKEN": "readme-token", "COLUMNS": "200"}
    for args in commands[1:]:
        result = CliRunner().invoke(app, args, env=env)
        assert result.exit_code == 0, (args, result.output)
    assert (tmp_path / "report" / "report.json").is_file()
