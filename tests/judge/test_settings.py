"""Judge settings: judges from an env var or a file, keys from env or mounted secret files."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from harmrank.judge.app import create_app
from harmrank.judge.settings import JudgeSettings

GPT = {"name": "gpt", "provider": "openai", "model": "gpt-4o", "orders": "all"}
LLAMA = {
    "name": "llama",
    "provider": "openai_compatible",
    "model": "meta-llama/Llama-3.1-70B-Instruct",
    "base_url": "http://vllm:8000",
    "limit_group": "vllm",
}


def test_judges_from_env_json_and_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "judges.json"
    path.write_text(json.dumps([LLAMA]))
    monkeypatch.setenv("HARMRANK_JUDGE_JUDGES", json.dumps([GPT]))
    monkeypatch.setenv("HARMRANK_JUDGE_JUDGES_FILE", str(path))
    monkeypatch.setenv("HARMRANK_JUDGE_LIMITS", '{"openai": {"requests_per_minute": 500}}')
    settings = JudgeSettings.load()
    gpt, llama = settings.judges
    assert gpt.orders == "all"
    assert gpt.resolved_base_url == "https://api.openai.com"
    assert gpt.resolved_output_mode == "json"
    assert llama.resolved_output_mode == "text"
    assert llama.resolved_limit_group == "vllm"
    assert settings.limits_for("openai").requests_per_minute == 500
    assert settings.limits_for("vllm").requests_per_minute is None


def test_keys_from_env_and_from_mounted_secret_files(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "harmrank_judge_anthropic_api_key").write_text("sk-ant-from-file\n")
    monkeypatch.setenv("HARMRANK_JUDGE_SECRETS_DIR", str(tmp_path))
    monkeypatch.setenv("HARMRANK_JUDGE_OPENAI_API_KEY", "sk-from-env")
    monkeypatch.setenv(
        "HARMRANK_JUDGE_JUDGES",
        json.dumps([GPT, {"name": "claude", "provider": "anthropic", "model": "claude"}]),
    )
    settings = JudgeSettings.load()
    gpt, claude = settings.judges
    assert settings.api_key_for(gpt).get_secret_value() == "sk-from-env"  # type: ignore[union-attr]
    key = settings.api_key_for(claude)
    assert key is not None
    assert key.get_secret_value() == "sk-ant-from-file"
    assert "sk-from-env" not in repr(settings)
    assert "sk-ant-from-file" not in repr(settings)


def test_duplicate_judge_names_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARMRANK_JUDGE_JUDGES", json.dumps([GPT, GPT]))
    with pytest.raises(ValidationError, match="unique: gpt"):
        JudgeSettings.load()


async def test_create_app_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARMRANK_JUDGE_JUDGES", json.dumps([GPT]))
    app = create_app()
    transport = httpx.ASGITransport(app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://judge") as client,
    ):
        judges = (await client.get("/v1/judges")).json()["judges"]
    assert [j["name"] for j in judges] == ["gpt"]
