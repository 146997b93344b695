"""Every request the judge can send, and every reply its stand-ins give, against the SDK types.

Request shapes: each provider, each output mode, with and without the repair turn, and the
model families whose parameters differ (OpenAI's reasoning models). The types are the official
SDKs' (pinned dev dependencies), so a field the API no longer takes fails here.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from tests.judge.conftest import ITEM, MakeStandIn, judge_config, judge_settings
from tests.judge.standins import ProviderName, Reply, StandIn
from tests.provider_types import reply_problems, request_problems

from harmrank.common.contracts.judging import OutputMode
from harmrank.judge.providers import PROVIDERS, Turn
from harmrank.judge.settings import JudgeConfig

LABELS = ["A", "B", "C"]
FIRST = [Turn("user", "Rank Responses A, B and C.")]
REPAIRED = [*FIRST, Turn("assistant", "A: 1, B: 1"), Turn("user", "No ties; answer again.")]
MODELS: dict[ProviderName, list[str]] = {
    "openai": ["gpt-4o-2024-08-06", "o3-mini", "gpt-5"],
    "anthropic": ["claude-sonnet-4-5"],
    "gemini": ["gemini-2.5-pro"],
    "openai_compatible": ["meta-llama/Llama-3.1-70B-Instruct"],
}
SHAPES = [
    (provider, model, mode, turns)
    for provider, models in MODELS.items()
    for model in models
    for mode in ("json", "text")
    for turns in (FIRST, REPAIRED)
]


def body_for(provider: ProviderName, model: str, mode: OutputMode, turns: list[Turn]) -> Any:
    judge = JudgeConfig(name="j", provider=provider, model=model, output_mode=mode, temperature=0.3)
    client = PROVIDERS[provider](judge, httpx.AsyncClient())
    return client.body(turns, LABELS)


@pytest.mark.parametrize(("provider", "model", "mode", "turns"), SHAPES)
def test_every_request_shape_fits_the_sdk_type(
    provider: ProviderName, model: str, mode: OutputMode, turns: list[Turn]
) -> None:
    body = body_for(provider, model, mode, turns)
    assert request_problems(provider, body) == []


def test_the_anthropic_request_carries_no_sampling_parameters() -> None:
    body = body_for("anthropic", "claude-sonnet-4-5", "json", FIRST)
    assert not {"temperature", "top_p", "top_k"} & set(body)
    # The check itself refuses what the API refuses: the body main used to send.
    assert request_problems("anthropic", body | {"temperature": 0.0}) == [
        "body.temperature: not a field of MessageCreateParamsNonStreaming"
    ]


@pytest.mark.parametrize("model", ["o3-mini", "gpt-5"])
def test_openai_reasoning_models_get_no_temperature(model: str) -> None:
    assert "temperature" not in body_for("openai", model, "json", FIRST)
    assert body_for("openai", "gpt-4o", "json", FIRST)["temperature"] == 0.3


async def test_the_anthropic_standin_refuses_temperature_as_the_api_does(
    make_standin: MakeStandIn,
) -> None:
    standin, url = make_standin("anthropic")
    body = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 64,
        "temperature": 0.0,
        "messages": [{"role": "user", "content": "hi"}],
    }
    headers = {"x-api-key": standin.api_key, "anthropic-version": "2023-06-01"}
    async with httpx.AsyncClient(base_url=url) as client:
        answer = await client.post("/v1/messages", json=body, headers=headers)
    assert answer.status_code == 400
    error = answer.json()
    assert error["type"] == "error"
    assert error["error"] == {
        "type": "invalid_request_error",
        "message": "temperature: Extra inputs are not permitted",
    }


async def test_judges_info_states_the_temperature_actually_sent(
    make_standin: MakeStandIn, judge_client: Any
) -> None:
    _, url = make_standin("anthropic")
    settings = judge_settings(
        judge_config("claude", "anthropic", url), judge_config("gpt", "openai", url)
    )
    listed = (await judge_client(settings).get("/v1/judges")).json()["judges"]
    assert {j["name"]: j["temperature"] for j in listed} == {"claude": None, "gpt": 0.0}


STOPS = ["complete", "truncated", "refused", "blocked"]


@pytest.mark.parametrize("provider", list(MODELS))
@pytest.mark.parametrize("json_mode", [True, False])
@pytest.mark.parametrize("stop", STOPS)
def test_standin_replies_fit_the_sdk_response_model(
    provider: ProviderName, json_mode: bool, stop: str
) -> None:
    standin = StandIn(provider, "key")
    body = body_for(provider, MODELS[provider][0], "json" if json_mode else "text", FIRST)
    seen = standin._understand(body, {})
    seen.json_mode, seen.labels = json_mode, LABELS
    reply = Reply(ranks={"A": 2, "B": None, "C": 1}, stop=stop)  # type: ignore[arg-type]
    payload = standin._success(seen, reply, body | {"model": MODELS[provider][0]})
    assert reply_problems(provider, payload) == []


async def test_a_whole_judgment_with_repair_passes_every_check(
    make_standin: MakeStandIn, judge_client: Any
) -> None:
    for provider in MODELS:
        standin, url = make_standin(provider)
        standin.script(Reply(ranks={"A": 1, "B": 1, "C": None}))  # a tie: one repair turn
        client = judge_client(judge_settings(judge_config("j", provider, url)))
        answer = await client.post("/v1/judge", json=ITEM)
        assert answer.status_code == 200, answer.text
        assert [s.messages for s in standin.seen] == [1, 3]
        assert standin.rejected == []
