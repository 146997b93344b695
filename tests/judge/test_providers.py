"""Each production provider client against its stand-in, over real HTTP through the judge app.

Covers: both output modes, auth headers, the one repair attempt (with the exact problem sent
back), abstentions (still invalid, truncated twice, refused, blocked), and upstream errors
(429 with retry-after, 500, Anthropic's 529) retried until they pass or reported when they
do not.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from tests.judge.conftest import ITEM, MakeStandIn, judge_config, judge_settings
from tests.judge.standins import ProviderName, Reply, StandIn

from harmrank.judge.providers import gemini
from harmrank.judge.settings import JudgeSettings

JudgeClient = Callable[[JudgeSettings], httpx.AsyncClient]
PROVIDERS: list[ProviderName] = ["openai", "anthropic", "gemini", "openai_compatible"]
VALID = {"A": 2, "B": None, "C": 1}
TIED = {"A": 1, "B": 1, "C": None}


async def _judge(
    make_standin: MakeStandIn,
    judge_client: JudgeClient,
    provider: ProviderName,
    *replies: Reply,
    **judge_options: Any,
) -> tuple[StandIn, dict[str, Any]]:
    standin, url = make_standin(provider)
    standin.script(*replies)
    settings = judge_settings(judge_config("j", provider, url, **judge_options))
    response = await judge_client(settings).post("/v1/judge", json=ITEM)
    assert response.status_code == 200, response.text
    judgment: dict[str, Any] = response.json()["results"][0]["judgments"][0]
    return standin, judgment


def _in_model_order(judgment: dict[str, Any], by_label: dict[str, int | None]) -> list[int]:
    by_model = {judgment["labels"][label]: rank or 0 for label, rank in by_label.items()}
    return [by_model[m] for m in ITEM["responses"]]


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("mode", ["json", "text"])
async def test_valid_answer_in_each_mode(
    make_standin: MakeStandIn, judge_client: JudgeClient, provider: ProviderName, mode: str
) -> None:
    standin, judgment = await _judge(
        make_standin, judge_client, provider, Reply(ranks=VALID), output_mode=mode
    )
    assert judgment["ranks"] == _in_model_order(judgment, VALID)
    assert judgment["abstention"] is None
    assert judgment["error"] is None
    assert not judgment["repaired"]
    assert judgment["usage"]["input_tokens"] > 0
    assert judgment["usage"]["output_tokens"] > 0
    assert standin.seen[0].json_mode is (mode == "json")


async def test_request_bodies_follow_each_wire_format(
    make_standin: MakeStandIn, judge_client: JudgeClient
) -> None:
    bodies = {}
    for provider in ("openai", "anthropic", "gemini", "openai_compatible"):
        standin, _ = await _judge(
            make_standin,
            judge_client,
            provider,
            Reply(ranks=VALID),
            output_mode="json",
            max_tokens=300,
        )
        bodies[provider] = standin.seen[0].body
    assert bodies["openai"]["max_completion_tokens"] == 300
    assert bodies["openai"]["response_format"]["json_schema"]["strict"] is True
    assert bodies["openai_compatible"]["max_tokens"] == 300
    assert bodies["anthropic"]["tool_choice"] == {"type": "tool", "name": "submit_harm_ranking"}
    assert bodies["anthropic"]["max_tokens"] == 300
    config = bodies["gemini"]["generationConfig"]
    assert config["maxOutputTokens"] == 300
    assert config["responseMimeType"] == "application/json"
    assert config["responseSchema"]["required"] == ["A", "B", "C"]


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_tie_is_repaired_once_with_the_exact_problem(
    make_standin: MakeStandIn, judge_client: JudgeClient, provider: ProviderName
) -> None:
    standin, judgment = await _judge(
        make_standin, judge_client, provider, Reply(ranks=TIED), Reply(ranks=VALID)
    )
    assert judgment["repaired"] is True
    assert judgment["ranks"] == _in_model_order(judgment, VALID)
    assert len(judgment["raw_texts"]) == 2
    follow_up = json.dumps(standin.seen[1].body)
    assert "Response A and Response B share rank 1; ties are not allowed" in follow_up
    assert standin.seen[1].messages == 3  # prompt, the judge's answer, the repair request


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_still_invalid_after_repair_is_an_abstention_not_harmless(
    make_standin: MakeStandIn, judge_client: JudgeClient, provider: ProviderName
) -> None:
    _, judgment = await _judge(
        make_standin,
        judge_client,
        provider,
        Reply(ranks={"A": 1, "B": 2}),
        Reply(text="I would rather not say."),
        output_mode="text",
    )
    assert judgment["ranks"] is None
    assert judgment["abstention"]["reason"] == "invalid_answer"
    assert "no line of the form" in judgment["abstention"]["detail"]
    assert judgment["raw_text"] == "I would rather not say."


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_truncated_twice_abstains_as_truncated(
    make_standin: MakeStandIn, judge_client: JudgeClient, provider: ProviderName
) -> None:
    cut = Reply(text="Response A: 2\nResponse B:", stop="truncated")
    standin, judgment = await _judge(make_standin, judge_client, provider, cut, cut)
    assert judgment["abstention"]["reason"] == "truncated"
    assert "cut off by the token limit" in json.dumps(standin.seen[1].body)


@pytest.mark.parametrize(
    ("provider", "stop", "reason"),
    [
        ("openai", "refused", "refused"),
        ("anthropic", "refused", "refused"),
        ("gemini", "blocked", "blocked"),
        ("gemini", "prompt_blocked", "blocked"),
        ("openai", "blocked", "blocked"),
    ],
)
async def test_refusals_and_safety_blocks_abstain_without_repair(
    make_standin: MakeStandIn,
    judge_client: JudgeClient,
    provider: ProviderName,
    stop: Any,
    reason: str,
) -> None:
    standin, judgment = await _judge(make_standin, judge_client, provider, Reply(stop=stop))
    assert judgment["abstention"]["reason"] == reason
    assert judgment["ranks"] is None
    assert len(standin.seen) == 1


@pytest.mark.parametrize(
    ("provider", "status", "retry_after"),
    [
        ("openai", 429, "1"),
        ("anthropic", 529, None),
        ("gemini", 500, None),
        ("openai_compatible", 503, "0"),
    ],
)
async def test_transient_errors_are_retried(
    make_standin: MakeStandIn,
    judge_client: JudgeClient,
    provider: ProviderName,
    status: int,
    retry_after: str | None,
) -> None:
    failure = Reply(status=status, retry_after=retry_after)
    standin, judgment = await _judge(
        make_standin, judge_client, provider, failure, Reply(ranks=VALID)
    )
    assert judgment["ranks"] == _in_model_order(judgment, VALID)
    assert len(standin.seen) == 2


@pytest.mark.parametrize("provider", ["openai", "gemini"])
async def test_the_stated_wait_is_honoured(
    make_standin: MakeStandIn, judge_client: JudgeClient, provider: ProviderName
) -> None:
    """OpenAI states it in Retry-After, Gemini in a RetryInfo of the error body."""
    _standin, judgment = await _judge(
        make_standin, judge_client, provider, Reply(status=429, retry_after="1"), Reply(ranks=VALID)
    )
    assert judgment["latency_seconds"] >= 1.0


@pytest.mark.parametrize(
    ("details", "expected"),
    [
        ([{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "12s"}], 12.0),
        (
            [
                {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []},
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "3.95752s"},
            ],
            3.95752,
        ),
        ([{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "soon"}], None),
        ([{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "-5s"}], None),
        ([{"@type": "type.googleapis.com/google.rpc.Help", "retryDelay": "5s"}], None),
        ("not a list", None),
        ([], None),
    ],
)
def test_gemini_reads_the_retry_info_of_an_error_body(details: Any, expected: float | None) -> None:
    body = {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "details": details}}
    assert gemini.retry_delay(json.dumps(body).encode()) == expected


@pytest.mark.parametrize("body", [b"<html>502</html>", b"[]", b'{"error": "x"}', b""])
def test_gemini_finds_no_retry_info_in_other_bodies(body: bytes) -> None:
    assert gemini.retry_delay(body) is None


async def test_every_call_failing_answers_the_upstream_error(
    make_standin: MakeStandIn, judge_client: JudgeClient
) -> None:
    standin, url = make_standin("anthropic")
    standin.script(*[Reply(status=529)] * 2)
    settings = judge_settings(judge_config("j", "anthropic", url, max_attempts=2))
    response = await judge_client(settings).post("/v1/judge", json=ITEM)
    assert response.status_code == 502
    body = response.json()
    assert body["error_type"] == "upstream_error"
    assert "anthropic answered 529: Overloaded" in body["error"]


async def test_a_wrong_key_is_reported_per_order_when_other_judges_answer(
    make_standin: MakeStandIn, judge_client: JudgeClient
) -> None:
    _good, good_url = make_standin("gemini")
    _, bad_url = make_standin("openai")
    settings = judge_settings(
        judge_config("good", "gemini", good_url),
        judge_config("bad", "openai", bad_url, api_key="sk-wrong-key-000000"),
    )
    response = await judge_client(settings).post("/v1/judge", json=ITEM)
    assert response.status_code == 200
    good_result, bad_result = response.json()["results"]
    assert good_result["judgments"][0]["ranks"] is not None
    error = bad_result["judgments"][0]["error"]
    assert error["error_type"] == "upstream_rejected"  # permanent: asking again cannot help
    assert "401" in error["message"]
    assert bad_result["judgments"][0]["provider_calls"] == 1
    assert "sk-wrong-key-000000" not in response.text
