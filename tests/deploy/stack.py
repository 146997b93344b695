"""A harmrank stack on loopback for the deployment tests, started once per test module.

The gateway (with its in-process worker), the generator, the judge and the metrics service run as
uvicorn servers in threads, as in ``tests/gateway/test_end_to_end.py``; the generator calls TGI
stand-ins, the judge calls OpenAI and Anthropic stand-ins, and the database is a throwaway
PostgreSQL database migrated by Alembic. Fixtures here are synchronous so one stack can serve a
whole module.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from pydantic import SecretStr
from starlette.types import ASGIApp
from tests.conftest import LiveServer
from tests.databases import throwaway_postgres_database
from tests.deploy.tgi_metrics import DocumentedTgi
from tests.generator.helpers import FAST_RETRY, model
from tests.generator.tgi_standin import StandinState
from tests.judge.conftest import KEYS, judge_config, judge_settings
from tests.judge.standins import Reply, StandIn, prefer_position

from harmrank.gateway.app import create_app as create_gateway
from harmrank.gateway.db.migrate import upgrade
from harmrank.gateway.settings import GatewaySettings
from harmrank.generator.app import create_app as create_generator
from harmrank.generator.settings import GeneratorSettings
from harmrank.judge.app import create_app as create_judge
from harmrank.metrics.app import create_app as create_metrics

TOKEN = "deploy-test-token-5d2a"
MODELS = ("mistral-7b", "mpt-7b", "stablelm-alpha-7b")
JUDGES = ("gpt4o", "claude")


@dataclass
class Stack:
    gateway: str
    generator: str
    judge: str
    metrics: str
    tgi: dict[str, str]
    database_url: str
    servers: list[LiveServer] = field(default_factory=list)


@contextmanager
def postgres_database(*, migrate: bool = True) -> Iterator[str]:
    """A fresh PostgreSQL database (migrated to the newest revision), dropped afterwards: the
    tests' throwaway database, entered and left on one event loop of this synchronous code's."""
    with asyncio.Runner() as runner:
        database = throwaway_postgres_database()
        url = runner.run(database.__aenter__())
        try:
            if migrate:
                upgrade(url)
            yield url
        finally:
            runner.run(database.__aexit__(None, None, None))


def _serve(stack_servers: list[LiveServer], app: ASGIApp) -> str:
    server = LiveServer(app)
    server.start()
    stack_servers.append(server)
    return server.url


@contextmanager
def running_stack() -> Iterator[Stack]:
    """Start the whole stack on loopback; stop it (and drop its database) on exit."""
    with postgres_database() as url:
        servers: list[LiveServer] = []
        try:
            yield _start(servers, url)
        finally:
            # Before the database is dropped: the in-process worker holds connections to it.
            for server in reversed(servers):
                server.stop()


def _tgi(name: str) -> DocumentedTgi:
    standin = DocumentedTgi(StandinState(model_id=f"org/{name}"))
    standin.state.fail(429)  # one overload answer, so the generator's retry metrics have data
    return standin


def _start(servers: list[LiveServer], url: str) -> Stack:
    tgi = {name: _serve(servers, _tgi(name).app) for name in MODELS}
    registry = [
        model(name, base, mode="generate", prompt_template="{prompt}\n")
        for name, base in tgi.items()
    ]
    generator = _serve(
        servers, create_generator(GeneratorSettings(models=registry, retry=FAST_RETRY))
    )
    openai = StandIn("openai", KEYS["openai"], policy=prefer_position(0))
    openai.script(Reply(status=429, retry_after="0"))  # and the judge's retry metrics too
    anthropic = StandIn("anthropic", KEYS["anthropic"], policy=prefer_position(2))
    judges = judge_settings(
        judge_config(JUDGES[0], "openai", _serve(servers, openai.app())),
        judge_config(JUDGES[1], "anthropic", _serve(servers, anthropic.app())),
    )
    judge = _serve(servers, create_judge(judges))
    metrics = _serve(servers, create_metrics())
    settings = GatewaySettings(
        database_url=SecretStr(url),
        generator_url=generator,
        judge_url=judge,
        metrics_url=metrics,
        worker_loops=2,
        poll_interval_seconds=0.05,
        retry_base_seconds=0.05,
        retry_max_seconds=0.2,
        api_tokens=[SecretStr(TOKEN)],
        telemetry_interval_seconds=0.2,
    )
    gateway = _serve(servers, create_gateway(settings))
    return Stack(gateway, generator, judge, metrics, tgi, url, servers)
