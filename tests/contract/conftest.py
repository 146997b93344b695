"""Every service served over real HTTP for schemathesis, once per module.

The gateway runs on a SQLite file (migrated at start) with a demo dataset, so the routes that
read one have something to read; the generator and the judge have their stand-ins behind them.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from pydantic import SecretStr
from tests.faults.stack import TOKEN, Downstreams, Servers, prompts_jsonl, start_downstreams

from harmrank.gateway.app import create_app as create_gateway
from harmrank.gateway.db.engine import sqlite_url
from harmrank.gateway.settings import GatewaySettings
from harmrank.metrics.app import create_app as create_metrics
from harmrank.metrics.settings import MetricsSettings


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    started = Servers()
    yield started
    started.stop_all()


@pytest.fixture(scope="module")
def downstreams(servers: Servers) -> Downstreams:
    return start_downstreams(servers)


@pytest.fixture(scope="module")
def gateway_url(
    servers: Servers, downstreams: Downstreams, tmp_path_factory: pytest.TempPathFactory
) -> str:
    settings = GatewaySettings(
        database_url=SecretStr(sqlite_url(tmp_path_factory.mktemp("contract") / "gateway.db")),
        migrate_on_start=True,
        generator_url=downstreams.generator_url,
        judge_url=downstreams.judge_url,
        metrics_url=downstreams.metrics_url,
        api_tokens=[SecretStr(TOKEN)],
    )
    url = servers.serve(create_gateway(settings)).url
    files = {"file": ("p.jsonl", prompts_jsonl(3), "application/x-ndjson")}
    headers = {"Authorization": f"Bearer {TOKEN}"}
    created = httpx.post(
        f"{url}/v1/datasets", files=files, data={"name": "demo"}, headers=headers, timeout=30
    )
    assert created.status_code == 201, created.text
    return url


@pytest.fixture(scope="module")
def metrics_url(servers: Servers) -> str:
    return servers.serve(create_metrics(MetricsSettings())).url
