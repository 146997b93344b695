"""The worker entry point: settings, the migration check, a clean stop."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from harmrank.gateway import worker_main
from harmrank.gateway.db.engine import DATABASE_URL_ENV
from harmrank.gateway.db.migrate import upgrade
from harmrank.gateway.settings import GatewaySettings
from harmrank.gateway.worker_main import serve


def test_settings_come_from_the_gateway_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARMRANK_GATEWAY_JUDGE_URL", "http://judge:8002")
    monkeypatch.setenv("HARMRANK_GATEWAY_LEASE_SECONDS", "12.5")
    monkeypatch.setenv("HARMRANK_GATEWAY_CLAIM_BATCH", "3")
    settings = GatewaySettings()
    assert (str(settings.judge_url), settings.lease_seconds) == ("http://judge:8002/", 12.5)
    assert settings.claim_batch == 3
    assert settings.downstream_timeout_seconds > 60  # LLM calls are slow


async def test_an_unmigrated_database_is_refused(tmp_path: Path) -> None:
    settings = GatewaySettings(sqlite_path=tmp_path / "new.db")
    with pytest.raises(SystemExit, match="migrat"):
        await serve(settings, 1, asyncio.Event())


async def test_the_worker_stops_when_told(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    await asyncio.to_thread(upgrade, url)
    monkeypatch.setenv(DATABASE_URL_ENV, url)
    tuned: list[bool] = []
    monkeypatch.setattr(worker_main, "tune_garbage_collector", lambda: tuned.append(True))
    stop = asyncio.Event()
    worker = asyncio.create_task(serve(GatewaySettings(poll_interval_seconds=0.01), 2, stop))
    await asyncio.sleep(0.1)
    assert not worker.done()
    assert tuned == [True]  # once started, before its work (harmrank.common.heap)
    stop.set()
    await asyncio.wait_for(worker, 5)
