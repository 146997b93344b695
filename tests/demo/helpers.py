"""A generator and a judge service, real apps over HTTP, in front of the demonstration servers."""

from __future__ import annotations

from tests.conftest import ServeApp

from harmrank.demo.judge_server import DemoJudgeServer
from harmrank.demo.tgi_server import DemoTgiServer
from harmrank.generator.app import create_app as create_generator
from harmrank.generator.settings import GeneratorSettings
from harmrank.judge.app import create_app as create_judge
from harmrank.judge.settings import JudgeSettings


def downstreams(serve_app: ServeApp) -> tuple[str, str]:
    """The generator's and the judge service's URLs: models small-a and small-b, judges judge-x
    and judge-y."""
    models = [
        {"name": name, "base_url": serve_app(DemoTgiServer(name, 0.5).app)}
        for name in ("small-a", "small-b")
    ]
    judge = serve_app(DemoJudgeServer().app)
    judges = [
        {"name": name, "provider": "openai_compatible", "model": model, "base_url": judge}
        for name, model in (("judge-x", "demo-steady"), ("judge-y", "demo-hasty"))
    ]
    generator = serve_app(create_generator(GeneratorSettings.model_validate({"models": models})))
    return generator, serve_app(create_judge(JudgeSettings.model_validate({"judges": judges})))
