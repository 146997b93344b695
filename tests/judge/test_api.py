"""The judge app end to end: routes, fan-out, orders, position bias, telemetry, key hygiene."""

from __future__ import annotations

import logging
from collections.abc import Callable

import httpx
import pytest
from tests.judge.conftest import ITEM, KEYS, MakeStandIn, judge_config, judge_settings
from tests.judge.standins import Reply, prefer_position, rank_by_text

from harmrank.judge.settings import JudgeSettings

JudgeClient = Callable[[JudgeSettings], httpx.AsyncClient]
TRUTH = {"reply one": 2, "reply two": None, "reply three": 1}  # mistral 2, mpt N/A, stablelm 1


def _three_judges(make_standin: MakeStandIn) -> JudgeSettings:
    _, biased = make_standin("openai", policy=prefer_position(0))
    _, steady = make_standin("anthropic", policy=rank_by_text(TRUTH))
    _, gemini = make_standin("gemini", policy=rank_by_text(TRUTH))
    return judge_settings(
        judge_config(
            "gpt", "openai", biased, price_input_per_million=2.5, price_output_per_million=10.0
        ),
        judge_config("claude", "anthropic", steady),
        judge_config("gemini", "gemini", gemini, output_mode="text"),
    )


async def test_judges_lists_configuration_without_keys(
    make_standin: MakeStandIn, judge_client: JudgeClient
) -> None:
    response = await judge_client(_three_judges(make_standin)).get("/v1/judges")
    assert response.status_code == 200
    judges = response.json()["judges"]
    assert [j["name"] for j in judges] == ["gpt", "claude", "gemini"]
    assert judges[2]["output_mode"] == "text"
    assert judges[0]["output_mode"] == "json"
    assert all("key" not in field for j in judges for field in j)


async def test_all_orders_expose_a_position_biased_judge(
    make_standin: MakeStandIn, judge_client: JudgeClient
) -> None:
    client = judge_client(_three_judges(make_standin))
    response = await client.post("/v1/judge", json={**ITEM, "orders": "all"})
    assert response.status_code == 200
    body = response.json()
    assert body["models"] == ["mistral", "mpt", "stablelm"]
    gpt, claude, gemini = body["results"]
    assert len(gpt["judgments"]) == 6
    assert {tuple(j["order"]) for j in gpt["judgments"]} == {
        tuple(j["order"]) for j in claude["judgments"]
    }
    for result in (claude, gemini):  # consistent judges: same ranks whatever the order
        assert {tuple(j["ranks"]) for j in result["judgments"]} == {(2, 0, 1)}
        assert result["aggregate"]["ranks"] == [2, 0, 1]
        assert result["aggregate"]["consistency"] == 1.0
    assert gpt["aggregate"]["consistency"] < 0.5
    assert gpt["cost_usd"] > 0
    assert claude["cost_usd"] == 0

    records = [
        {"judge": r["judge"], "models": body["models"], "order": j["order"], "ranks": j["ranks"]}
        for r in body["results"]
        for j in r["judgments"]
    ]
    bias = (await client.post("/v1/position-bias", json={"records": records})).json()["judges"]
    by_judge = {b["judge"]: b for b in bias}
    assert by_judge["gpt"]["share_by_position"] == {"0": 1.0, "1": 0.0, "2": 0.0}
    assert by_judge["claude"]["share_by_position"] == pytest.approx(
        {"0": 1 / 3, "1": 1 / 3, "2": 1 / 3}
    )


async def test_choosing_judges_and_seeded_orders(
    make_standin: MakeStandIn, judge_client: JudgeClient
) -> None:
    client = judge_client(_three_judges(make_standin))
    request = {**ITEM, "judges": ["claude"], "orders": 3}
    first = (await client.post("/v1/judge", json=request)).json()
    again = (await client.post("/v1/judge", json=request)).json()
    assert [r["judge"] for r in first["results"]] == ["claude"]
    orders = [j["order"] for j in first["results"][0]["judgments"]]
    assert orders == [j["order"] for j in again["results"][0]["judgments"]]
    assert [j["repetition"] for j in first["results"][0]["judgments"]] == [0, 1, 2]


@pytest.mark.parametrize(
    ("request_update", "status", "error_type"),
    [
        ({"judges": ["nobody"]}, 404, "unknown_judge"),
        ({"responses": dict.fromkeys("abcde", "x"), "orders": "all"}, 422, "validation"),
        ({"responses": {"only": "one"}}, 422, "validation"),
        ({"orders": 0}, 422, "validation"),
    ],
)
async def test_bad_requests(
    make_standin: MakeStandIn,
    judge_client: JudgeClient,
    request_update: dict[str, object],
    status: int,
    error_type: str,
) -> None:
    client = judge_client(_three_judges(make_standin))
    response = await client.post("/v1/judge", json={**ITEM, **request_update})
    assert response.status_code == status
    assert response.json()["error_type"] == error_type


async def test_telemetry_counts_calls_tokens_cost_retries_and_invalid_answers(
    make_standin: MakeStandIn, judge_client: JudgeClient
) -> None:
    standin, url = make_standin("openai")
    standin.script(Reply(status=429, retry_after="0"), Reply(ranks={"A": 1, "B": 1, "C": None}))
    settings = judge_settings(
        judge_config(
            "gpt", "openai", url, price_input_per_million=1.0, price_output_per_million=1.0
        )
    )
    client = judge_client(settings)
    assert (await client.post("/v1/judge", json=ITEM)).status_code == 200
    text = (await client.get("/metrics")).text
    for line in (
        'harmrank_judge_calls_total{model="openai-model",outcome="invalid",provider="openai"} 1.0',
        'harmrank_judge_calls_total{model="openai-model",outcome="valid",provider="openai"} 1.0',
        'harmrank_judge_retries_total{provider="openai",reason="status_429"} 1.0',
        'harmrank_judge_invalid_answers_total{attempt="first",model="openai-model",'
        'provider="openai"} 1.0',
    ):
        assert line in text
    for name in (
        "input_tokens_total",
        "output_tokens_total",
        "cost_usd_total",
        "call_duration_seconds_bucket",
    ):
        assert f"harmrank_judge_{name}" in text


async def test_keys_appear_nowhere(
    make_standin: MakeStandIn, judge_client: JudgeClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = _three_judges(make_standin)
    _, wrong = make_standin("anthropic")  # answers 401 quoting the key it was sent
    settings.judges.append(judge_config("leaky", "anthropic", wrong, api_key="sk-ant-leak-999999"))
    client = judge_client(settings)
    seen = [
        (await client.get("/v1/judges")).text,
        (await client.post("/v1/judge", json=ITEM)).text,
        (await client.post("/v1/judge", json={**ITEM, "judges": ["leaky"]})).text,
        (await client.get("/metrics")).text,
        (await client.get("/openapi.json")).text,
        repr(settings),
        caplog.text,
    ]
    assert "401" in seen[2]
    for secret in [*KEYS.values(), "sk-ant-leak-999999"]:
        for text in seen:
            assert secret not in text
