"""A generator and a judge service configured from an example's own files, every server address
swapped for a stand-in that speaks TGI's or the judge provider's wire format."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from tests.conftest import ServeApp
from tests.generator.helpers import FAST_RETRY
from tests.generator.tgi_standin import Standin
from tests.judge.conftest import KEYS
from tests.judge.standins import StandIn, prefer_position

from harmrank.generator.app import create_app as create_generator
from harmrank.generator.settings import GeneratorSettings, load_models_file
from harmrank.judge.app import create_app as create_judge
from harmrank.judge.settings import JudgeSettings


def generator_url(serve_app: ServeApp, models_file: Path) -> str:
    models = [
        m.model_copy(update={"base_url": serve_app(Standin().app)})
        for m in load_models_file(models_file)
    ]
    settings = GeneratorSettings(models=models, retry=FAST_RETRY)
    return serve_app(create_generator(settings))


def judge_url(serve_app: ServeApp, judges_file: Path) -> str:
    judges: list[dict[str, Any]] = json.loads(judges_file.read_text())
    keys = {f"{provider}_api_key": SecretStr(key) for provider, key in KEYS.items()}
    for position, judge in enumerate(judges):
        standin = StandIn(judge["provider"], KEYS[judge["provider"]], prefer_position(position))
        judge["base_url"] = serve_app(standin.app())
    return serve_app(create_judge(JudgeSettings.model_validate({"judges": judges, **keys})))
