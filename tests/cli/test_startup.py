"""``harmrank serve`` warns at start about servers it cannot reach and about having no judges."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from tests.conftest import ServeApp, free_port

from harmrank.cli.startup import startup_warnings
from harmrank.demo.judge_server import DemoJudgeServer
from harmrank.demo.tgi_server import DemoTgiServer
from harmrank.generator.settings import GeneratorSettings
from harmrank.judge.settings import JudgeSettings


async def test_one_warning_per_unreachable_model_and_judge_provider(serve_app: ServeApp) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    generator = GeneratorSettings.model_validate(
        {
            "models": [
                {"name": "up", "base_url": serve_app(DemoTgiServer("up", 0.1).app)},
                {"name": "down", "base_url": nowhere},
            ]
        }
    )
    up = serve_app(DemoJudgeServer().app)
    judges = [
        {"name": "open", "provider": "openai_compatible", "model": "demo-steady", "base_url": up},
        {"name": "gpt", "provider": "openai", "model": "gpt-4o", "base_url": nowhere},
        {"name": "gpt-mini", "provider": "openai", "model": "gpt-4o-mini", "base_url": nowhere},
    ]
    judge = JudgeSettings.model_validate({"judges": judges})
    warnings = await startup_warnings(generator, judge)
    assert len(warnings) == 3, warnings
    assert warnings[0].startswith(f"model 'down': cannot reach its tgi server at {nowhere}")
    assert warnings[1].startswith(f"judge provider openai at {nowhere} (gpt, gpt-mini)")
    assert warnings[2] == "judge provider openai (gpt, gpt-mini): no API key set"


async def test_an_empty_judge_list_is_a_warning() -> None:
    warnings = await startup_warnings(None, JudgeSettings.model_validate({"judges": []}))
    assert len(warnings) == 1
    assert warnings[0].startswith("no judges are configured")


def test_serve_generator_prints_the_warning_at_start() -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HARMRANK_")}
    env["HARMRANK_GENERATOR_MODELS"] = json.dumps([{"name": "m", "base_url": nowhere}])
    command = [sys.executable, "-m", "harmrank.cli.main", "serve", "generator"]
    with subprocess.Popen(
        [*command, "--port", str(free_port())], env=env, stderr=subprocess.PIPE, text=True
    ) as process:
        try:
            assert process.stderr is not None
            deadline = time.monotonic() + 60
            line = ""
            while "warning" not in line and time.monotonic() < deadline:
                line = process.stderr.readline()
            assert f"warning: model 'm': cannot reach its tgi server at {nowhere}" in line
        finally:
            process.terminate()
            process.wait(30)


async def test_a_retired_judge_model_is_a_warning(serve_app: ServeApp) -> None:
    up = serve_app(DemoJudgeServer().app)
    judges = [
        {
            "name": "claude",
            "provider": "anthropic",
            "model": "claude-3-5-sonnet-20241022",
            "base_url": up,
            "api_key": "sk-ant-test",
        },
    ]
    warnings = await startup_warnings(None, JudgeSettings.model_validate({"judges": judges}))
    (warning,) = warnings
    assert warning.startswith("judge 'claude': anthropic model claude-3-5-sonnet-20241022 was")
