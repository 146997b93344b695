"""POST /v1/generate/batch: NDJSON lines as results finish, bounded by each model's limit."""

from __future__ import annotations

import asyncio

import httpx
from tests.generator.helpers import StartGenerator, StartStandin, model

from harmrank.common.contracts.generation import (
    BATCH_LINE,
    BatchErrorLine,
    BatchResultLine,
    BatchSummaryLine,
)

Line = BatchResultLine | BatchErrorLine | BatchSummaryLine


async def read_lines(client: httpx.AsyncClient, url: str, body: object) -> list[Line]:
    lines: list[Line] = []
    async with client.stream("POST", f"{url}/v1/generate/batch", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/x-ndjson")
        async for text in response.aiter_lines():
            if text:
                lines.append(BATCH_LINE.validate_json(text))
    return lines


def prompts(count: int) -> list[dict[str, str]]:
    return [{"id": f"p{i}", "text": f"prompt number {i}"} for i in range(count)]


async def test_batch_streams_every_item_bounded_by_concurrency(
    start_standin: StartStandin, start_generator: StartGenerator, client: httpx.AsyncClient
) -> None:
    fast, fast_url = start_standin(latency=0.02)
    slow, slow_url = start_standin(latency=0.05)
    url = start_generator(
        [model("fast", fast_url, concurrency=3), model("slow", slow_url, concurrency=2)]
    )
    body = {"prompts": prompts(12), "models": ["fast", "slow"], "params": {"max_new_tokens": 5}}

    lines = await read_lines(client, url, body)

    *items, summary = lines
    assert summary == BatchSummaryLine(total=24, succeeded=24, failed=0)
    assert all(isinstance(line, BatchResultLine) for line in items)
    assert sorted(line.index for line in items if isinstance(line, BatchResultLine)) == list(
        range(24)
    )
    pairs = {(line.prompt_id, line.model) for line in items if isinstance(line, BatchResultLine)}
    assert pairs == {(f"p{i}", m) for i in range(12) for m in ("fast", "slow")}
    # Each line says what it answers; the result inside agrees.
    for line in items:
        assert isinstance(line, BatchResultLine)
        assert (line.result.prompt_id, line.result.model) == (line.prompt_id, line.model)
    assert fast.state.max_in_flight == 3
    assert slow.state.max_in_flight == 2


async def test_batch_lines_arrive_in_finish_order(
    start_standin: StartStandin, start_generator: StartGenerator, client: httpx.AsyncClient
) -> None:
    _, fast_url = start_standin(latency=0.0)
    _, slow_url = start_standin(latency=0.5)
    url = start_generator([model("slow", slow_url), model("fast", fast_url)])
    body = {"prompts": prompts(2), "models": ["slow", "fast"]}

    lines = await read_lines(client, url, body)

    models = [line.model for line in lines if isinstance(line, BatchResultLine)]
    assert models == ["fast", "fast", "slow", "slow"]


async def test_batch_reports_errors_as_lines_and_goes_on(
    start_standin: StartStandin, start_generator: StartGenerator, client: httpx.AsyncClient
) -> None:
    _standin, tgi = start_standin(max_input_tokens=3)
    url = start_generator([model("m", tgi, concurrency=1)])
    body = {
        "prompts": [{"id": "ok", "text": "short"}, {"id": "long", "text": "a b c d e f"}],
        "models": ["m"],
    }

    lines = await read_lines(client, url, body)

    by_prompt = {line.prompt_id: line for line in lines if not isinstance(line, BatchSummaryLine)}
    assert isinstance(by_prompt["ok"], BatchResultLine)
    error_line = by_prompt["long"]
    assert isinstance(error_line, BatchErrorLine)
    assert error_line.error.error_type == "generation_validation"
    assert error_line.error.status_code == 422
    assert "must have less than 3 tokens" in error_line.error.error
    assert lines[-1] == BatchSummaryLine(total=2, succeeded=1, failed=1)


async def test_batch_is_refused_up_front_for_unknown_models_or_too_many_items(
    start_standin: StartStandin, start_generator: StartGenerator, client: httpx.AsyncClient
) -> None:
    standin, tgi = start_standin()
    url = start_generator([model("m", tgi)], max_batch_items=3)

    unknown = await client.post(
        f"{url}/v1/generate/batch", json={"prompts": prompts(1), "models": ["m", "nope"]}
    )
    assert unknown.status_code == 404
    assert unknown.json()["error_type"] == "not_found"

    too_many = await client.post(
        f"{url}/v1/generate/batch", json={"prompts": prompts(4), "models": ["m"]}
    )
    assert too_many.status_code == 422
    assert too_many.json()["error_type"] == "validation"
    assert standin.state.bodies == []


async def test_client_going_away_cancels_the_remaining_calls(
    start_standin: StartStandin, start_generator: StartGenerator, client: httpx.AsyncClient
) -> None:
    standin, tgi = start_standin(latency=0.2)
    url = start_generator([model("m", tgi, concurrency=2)])
    body = {"prompts": prompts(20), "models": ["m"]}

    async with client.stream("POST", f"{url}/v1/generate/batch", json=body) as response:
        async for text in response.aiter_lines():
            assert BATCH_LINE.validate_json(text).type == "result"
            break  # leave after the first line: the connection closes

    await asyncio.sleep(1.0)
    assert standin.state.in_flight == 0
    assert len(standin.state.bodies) < 10
