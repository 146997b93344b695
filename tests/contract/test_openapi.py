"""Schemathesis against the OpenAPI document of every service, over real HTTP.

Whatever it sends, no service answers 5xx, and every 4xx has the common error shape
``{"error", "error_type"}``. Examples per operation are bounded so the module stays fast;
``HARMRANK_CONTRACT_EXAMPLES`` raises the bound for a deeper search.
"""

from __future__ import annotations

import os
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from tests.faults.stack import TOKEN, Downstreams

EXAMPLES = int(os.environ.get("HARMRANK_CONTRACT_EXAMPLES", "15"))
AUTH = {"Authorization": f"Bearer {TOKEN}"}
FAST = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)


@schemathesis.check
def error_shape(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case[Any]
) -> bool | None:
    """Every 4xx answer is ``{"error": str, "error_type": str, ...}``."""
    if not 400 <= response.status_code < 500:
        return None
    body = response.json()
    assert isinstance(body, dict), f"{response.status_code}: the body is not an object"
    assert isinstance(body.get("error"), str), f"{response.status_code}: no 'error' string"
    assert isinstance(body.get("error_type"), str), f"{response.status_code}: no 'error_type'"
    return True


CHECKS: list[schemathesis.CheckFunction] = [not_a_server_error, error_shape]


def check_operations(base_url: str, headers: dict[str, str] | None = None) -> list[str]:
    """Run every operation of the service's document; answer the operations checked.

    Schemathesis's pytest plugin does not load under pytest 9, so its Python API drives
    Hypothesis here: one bounded ``@given`` per operation.
    """
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    checked = []
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # an Err raises here, as wanted

        @given(case=operation.as_strategy())
        @FAST
        def run(case: schemathesis.Case[Any]) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS, timeout=30)

        run()
        checked.append(f"{operation.method.upper()} {operation.path}")
    return checked


def test_gateway(gateway_url: str) -> None:
    checked = check_operations(gateway_url, AUTH)
    assert {"POST /v1/datasets", "POST /v1/runs", "GET /v1/runs/{run_id}/tasks"} <= set(checked)


def test_generator(downstreams: Downstreams) -> None:
    assert "POST /v1/generate" in check_operations(downstreams.generator_url)


def test_judge(downstreams: Downstreams) -> None:
    assert "POST /v1/judge" in check_operations(downstreams.judge_url)


def test_metrics(metrics_url: str) -> None:
    assert {"POST /v1/report", "POST /v1/ppi"} <= set(check_operations(metrics_url))
