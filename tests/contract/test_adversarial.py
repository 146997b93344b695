"""Adversarial values in every parameter of every gateway operation, over real HTTP.

Schemathesis makes one well-formed request per operation; each is then sent again with every
string replaced by NUL bytes (and an unpaired surrogate), every number by one of 5,000 digits
and by one past 64 bits, and the body nested 100,000 deep. Zero 5xx, and every 4xx in the
common error shape.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import anyio
import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine
from tests.conftest import ServeApp
from tests.contract.test_openapi import AUTH
from tests.faults.stack import TOKEN, prompts_jsonl

from harmrank.gateway.app import create_app as create_gateway
from harmrank.gateway.settings import GatewaySettings

HUGE = "9" * 5000
PAST_64_BITS = str(2**70)
DEEP = "[" * 100_000 + "]" * 100_000
ONCE = settings(
    max_examples=1,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)


def _replaced(value: Any, text: str, number: str) -> Any:
    """The JSON value with every string set to ``text`` and every number to a placeholder
    for ``number`` (written into the JSON text afterwards: Python refuses 5,000 digits)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, str):
        return text
    if isinstance(value, int | float):
        return "@@NUMBER@@"
    if isinstance(value, list):
        return [_replaced(v, text, number) for v in value]
    if isinstance(value, dict):
        return {k: _replaced(v, text, number) for k, v in value.items()}
    return value


def bodies(body: Any) -> Iterator[str]:
    for text, number in (("a\u0000b", HUGE), ("\ud800", PAST_64_BITS), ("x", "-" + HUGE)):
        yield json.dumps(_replaced(body, text, number)).replace('"@@NUMBER@@"', number)
    yield DEEP
    yield '{"a": ' + DEEP + "}"


def parameter_sets(params: dict[str, Any] | None) -> Iterator[dict[str, str]]:
    if not params:
        return
    for value in ("\x00", "a\x00b", HUGE, PAST_64_BITS, "-" + PAST_64_BITS):
        yield dict.fromkeys(params, value)


def path_of(template: str, params: dict[str, Any] | None, value: str) -> str:
    path = template
    for name in params or {}:
        path = path.replace("{" + name + "}", value)
    return path


def requests_of(case: schemathesis.Case[Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(method, path, httpx keyword arguments) of every adversarial variant of the case."""
    method, template = case.method.upper(), case.path
    plain_path = path_of(template, case.path_parameters, "1")
    for query in parameter_sets(case.query):
        yield method, plain_path, {"params": query}
    if case.path_parameters:
        for value in ("%00", quote("a\x00b"), HUGE, PAST_64_BITS):
            yield method, path_of(template, case.path_parameters, value), {}
    if isinstance(case.body, dict | list) and case.media_type == "application/json":
        headers = {"content-type": "application/json"}
        for text in bodies(case.body):
            yield method, plain_path, {"content": text, "headers": headers}


def assert_no_server_error(answer: httpx.Response, what: str) -> None:
    assert answer.status_code < 500, f"{what}: {answer.status_code} {answer.text[:300]}"
    if answer.status_code >= 400:
        body = answer.json()
        assert isinstance(body.get("error"), str), what
        assert isinstance(body.get("error_type"), str), what


def adversarial(base_url: str, sent: list[str]) -> Callable[[schemathesis.Case[Any]], None]:
    def run(case: schemathesis.Case[Any]) -> None:
        with httpx.Client(base_url=base_url, headers=AUTH, timeout=60) as client:
            for method, path, kwargs in requests_of(case):
                answer = client.request(method, path, **kwargs)
                assert_no_server_error(answer, f"{method} {path} {str(kwargs)[:200]}")
                sent.append(f"{method} {case.path}")

    return run


def every_operation(base_url: str) -> list[str]:
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    sent: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]
        given(case=operation.as_strategy())(ONCE(adversarial(base_url, sent)))()
    return sent


WANTED = {"POST /v1/runs", "GET /v1/datasets/{name}/responses", "GET /v1/runs/{run_id}"}


def test_gateway_under_adversarial_values(gateway_url: str) -> None:
    sent = every_operation(gateway_url)
    assert set(sent) >= WANTED
    assert len(sent) > 150


async def test_gateway_on_both_backends(
    db_url: str, migrated_engine: AsyncEngine, serve_app: ServeApp
) -> None:
    """The module's gateway runs on SQLite; this one on each backend, a dataset in it."""
    settings = GatewaySettings(database_url=SecretStr(db_url), api_tokens=[SecretStr(TOKEN)])
    url = serve_app(create_gateway(settings))
    files = {"file": ("p.jsonl", prompts_jsonl(3), "application/x-ndjson")}
    async with httpx.AsyncClient(base_url=url, headers=AUTH, timeout=30) as client:
        created = await client.post("/v1/datasets", files=files, data={"name": "demo"})
        assert created.status_code == 201, created.text
    sent = await anyio.to_thread.run_sync(every_operation, url)
    assert set(sent) >= WANTED
