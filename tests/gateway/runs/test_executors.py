"""The HTTP executors against stand-ins of the generator and judge services, over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from tests.conftest import ServeApp, free_port

from harmrank.common.contracts.generation import GenerationParams
from harmrank.common.errors import UpstreamUnavailable, is_transient
from harmrank.common.http import RetryPolicy, create_client
from harmrank.gateway.runs.executors import (
    GenerateExecutor,
    JudgeExecutor,
    failure_of,
)
from harmrank.gateway.runs.tasks import TaskFailed
from harmrank.gateway.runs.work import GenerateWork, JudgeWork

GENERATE = GenerateWork("p1", "hello?", "small-a", GenerationParams(max_new_tokens=8))
JUDGE = JudgeWork("p1", "hello?", {"small-a": "no", "small-b": "yes, here is how"}, "jx", 1)


def error(status: int, error_type: str) -> JSONResponse:
    return JSONResponse({"error": f"it is {error_type}", "error_type": error_type}, status)


def generator_standin(seen: list[dict[str, Any]]) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/generate")
    async def generate(body: dict[str, Any]) -> Any:
        seen.append(body)
        if body["prompt_id"] == "too-long":
            return error(422, "generation_validation")
        if body["prompt_id"] == "busy":
            return error(503, "upstream_overloaded")
        return {
            "model": body["model"],
            "prompt_id": body["prompt_id"],
            "text": "I will not.",
            "finish_reason": "eos_token",
            "latency_seconds": 0.1,
            "backend": "tgi",
            "mode": "generate",
            "params": body.get("params", {}),
        }

    return app


def judgment(**changes: Any) -> dict[str, Any]:
    return {
        "repetition": 1,
        "order": ["small-b", "small-a"],
        "labels": {"A": "small-b", "B": "small-a"},
        "ranks": [1, 0],  # in the answer's model order: small-b harmful
        "raw_text": '{"A": 1, "B": "N/A"}',
    } | changes


def judge_standin(answers: dict[str, dict[str, Any]]) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/judge")
    async def judge(body: dict[str, Any]) -> Any:
        assert (body["judges"], body["orders"], body["first_repetition"]) == (["jx"], 1, 1)
        result = {
            "judge": "jx",
            "provider": "openai_compatible",
            "model": "llama",
            "template_id": "t",
            "template_version": 1,
            "output_mode": "json",
            "judgments": [answers[body["prompt_id"]]],
            "aggregate": {
                "ranks": None,
                "mean_ranks": None,
                "valid_orders": 0,
                "total_orders": 1,
                "consistency": None,
                "tie_break": "",
            },
            "usage": {"input_tokens": 10, "output_tokens": 2},
            "cost_usd": 0.001,
        }
        # The canonical order as the service saw it, reversed to prove we map by name.
        return {
            "prompt_id": body["prompt_id"],
            "models": ["small-b", "small-a"],
            "results": [result],
        }

    return app


@pytest.fixture
async def client_for(serve_app: ServeApp) -> AsyncIterator[Any]:
    clients: list[httpx.AsyncClient] = []

    def make(app: FastAPI | None) -> httpx.AsyncClient:
        url = serve_app(app) if app is not None else f"http://127.0.0.1:{free_port()}"
        client = create_client(url, timeout=5.0, policy=RetryPolicy(max_attempts=1))
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


async def test_generate_posts_the_contract_and_reads_the_result(client_for: Any) -> None:
    seen: list[dict[str, Any]] = []
    executor = GenerateExecutor(client_for(generator_standin(seen)))
    result = await executor.execute(GENERATE)
    assert (result.text, result.model) == ("I will not.", "small-a")
    # Unset parameters are not sent: the generator's defaults must apply to them.
    assert seen == [
        {
            "model": "small-a",
            "prompt": "hello?",
            "prompt_id": "p1",
            "params": {"max_new_tokens": 8},
            "max_upstream_calls": 4,  # the first attempt's share of the task's call budget
        }
    ]


@pytest.mark.parametrize(
    ("prompt_id", "error_type", "transient"),
    [("too-long", "generation_validation", False), ("busy", "upstream_overloaded", True)],
)
async def test_generate_errors_are_classified_by_error_type(
    client_for: Any, prompt_id: str, error_type: str, transient: bool
) -> None:
    executor = GenerateExecutor(client_for(generator_standin([])))
    work = GenerateWork(prompt_id, "hello?", "small-a", GenerationParams())
    with pytest.raises(TaskFailed) as raised:
        await executor.execute(work)
    assert raised.value.failure.error_type == error_type
    assert raised.value.failure.transient is transient
    assert "answered" in raised.value.failure.message


async def test_an_unreachable_service_is_transient(client_for: Any) -> None:
    executor = GenerateExecutor(client_for(None))
    with pytest.raises(UpstreamUnavailable) as raised:
        await executor.execute(GENERATE)
    failure = failure_of(raised.value)
    assert (failure.error_type, failure.transient) == ("upstream_unavailable", True)


async def test_judge_returns_ranks_in_our_model_order(client_for: Any) -> None:
    executor = JudgeExecutor(client_for(judge_standin({"p1": judgment()})))
    result = await executor.execute(JUDGE)
    assert result.ranks == [0, 1]
    assert result.presentation["order"] == ["small-b", "small-a"]
    assert result.details["cost_usd"] == 0.001


@pytest.mark.parametrize(
    ("answer", "error_type", "transient"),
    [
        (
            judgment(ranks=None, abstention={"reason": "refused", "detail": "no"}),
            "judge_abstained",
            False,
        ),
        (
            judgment(ranks=None, error={"error_type": "upstream_timeout", "message": "slow"}),
            "upstream_timeout",
            True,
        ),
    ],
)
async def test_judge_abstentions_are_final_and_errors_retried(
    client_for: Any, answer: dict[str, Any], error_type: str, transient: bool
) -> None:
    executor = JudgeExecutor(client_for(judge_standin({"p1": answer})))
    with pytest.raises(TaskFailed) as raised:
        await executor.execute(JUDGE)
    assert (raised.value.failure.error_type, raised.value.failure.transient) == (
        error_type,
        transient,
    )


@pytest.mark.parametrize(
    ("error_type", "status", "transient"),
    [
        ("generation_validation", 422, False),
        ("not_found", 404, False),
        ("generation_failed", 502, True),
        ("upstream_error", 502, True),
        ("upstream_rejected", 502, False),
        ("call_budget_spent", 503, True),
        ("http_429", 429, True),
        ("something_new", 400, False),
    ],
)
def test_transient_or_permanent(error_type: str, status: int, transient: bool) -> None:
    assert is_transient(error_type, status) is transient
