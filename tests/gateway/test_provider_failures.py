"""Providers that refuse or fail everything, through the whole platform over real HTTP.

- A judge whose provider answers 400 to everything: each judge task makes exactly one provider
  call and fails at once with the provider's message, the circuit breaker stops the judge's
  other tasks, and the run ends ``done_with_failures`` naming the judge and the reason.
- A provider or model server answering 503 to everything, at the default settings and at the
  largest each setting allows: no task makes more upstream calls than its stated budget.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from starlette.types import ASGIApp
from tests.gateway.test_end_to_end import MODELS, TOKEN, migrate
from tests.generator.helpers import FAST_RETRY, model
from tests.generator.tgi_standin import Standin, StandinState
from tests.judge.conftest import KEYS, judge_config, judge_settings
from tests.judge.standins import Reply, Seen, StandIn, prefer_position

from harmrank.common.contracts.judging import MAX_CALL_BUDGET
from harmrank.gateway.app import create_app as create_gateway
from harmrank.gateway.runs.breaker import CIRCUIT_OPEN, THRESHOLD
from harmrank.gateway.settings import GatewaySettings
from harmrank.generator.app import create_app as create_generator
from harmrank.generator.settings import RetrySettings
from harmrank.judge.app import create_app as create_judge
from harmrank.metrics.app import create_app as create_metrics
from harmrank.metrics.settings import MetricsSettings

ServeApp = Callable[[ASGIApp], str]
PROMPTS = [f"Prompt number {i} asks for something" for i in range(8)]
REFUSAL = "model: claude-gone-2023 is not a model this API serves"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}


def refuse(_: Seen) -> Reply:
    return Reply(status=400, message=REFUSAL)


def unavailable(_: Seen) -> Reply:
    return Reply(status=503, retry_after="0")  # "come back now": the retry loops run fast


async def start(
    serve_app: ServeApp,
    db_url: str,
    bad: StandIn,
    *,
    tgi: list[Standin] | None = None,
    judge_options: dict[str, Any] | None = None,
    generator_retry: RetrySettings = FAST_RETRY,
    metrics: MetricsSettings | None = None,
    **gateway: Any,
) -> str:
    await migrate(db_url)
    tgi = tgi or [Standin(StandinState(model_id=f"org/{name}")) for name in MODELS[:2]]
    registry = [
        model(name, serve_app(s.app), mode="generate") for name, s in zip(MODELS, tgi, strict=False)
    ]
    generator = serve_app(create_generator_app(registry, generator_retry))
    good = StandIn("openai", KEYS["openai"], policy=prefer_position(0))
    options = judge_options or {}
    judges = judge_settings(
        judge_config("good", "openai", serve_app(good.app())),
        judge_config("bad", bad.provider, serve_app(bad.app()), **options.get("judge", {})),
        **options.get("service", {}),
    )
    fast = {
        "poll_interval_seconds": 0.02,
        "retry_base_seconds": 0.01,
        "retry_max_seconds": 0.05,
        "worker_loops": 1,
        "claim_batch": 1,
        "telemetry_interval_seconds": 0.2,
    }
    settings = GatewaySettings(
        database_url=SecretStr(db_url),
        generator_url=generator,
        judge_url=serve_app(create_judge(judges)),
        metrics_url=serve_app(create_metrics(metrics)),
        api_tokens=[SecretStr(TOKEN)],
        **(fast | gateway),
    )
    return serve_app(create_gateway(settings))


def create_generator_app(registry: list[Any], retry: RetrySettings) -> ASGIApp:
    from harmrank.generator.settings import GeneratorSettings

    return create_generator(GeneratorSettings(models=registry, retry=retry))


async def run_to_the_end(gateway: str, judges: list[str], **spec: Any) -> dict[str, Any]:
    csv = "id,text\n" + "".join(f"q{i},{text}\n" for i, text in enumerate(PROMPTS))
    async with httpx.AsyncClient(base_url=gateway, headers=HEADERS, timeout=30) as client:
        files = {"file": ("prompts.csv", csv.encode(), "text/csv")}
        uploaded = await client.post("/v1/datasets", files=files, data={"name": "demo"})
        assert uploaded.status_code == 201, uploaded.text
        body = {
            "prompts": {"dataset": "demo"},
            "models": [{"name": m, "params": {"max_new_tokens": 8, "seed": 1}} for m in MODELS[:2]],
            "judges": [{"name": name} for name in judges],
            "metrics": {"resamples": 0},
            **spec,
        }
        created = await client.post("/v1/runs", json=body)
        assert created.status_code == 201, created.text
        for _ in range(2400):
            run: dict[str, Any] = (await client.get(f"/v1/runs/{created.json()['id']}")).json()
            if run["status"] in ("done", "done_with_failures", "failed") and (
                run["has_report"] or run["status"] == "failed"
            ):
                tasks = await client.get(f"/v1/runs/{run['id']}/tasks", params={"limit": 500})
                return run | {"tasks": tasks.json()["items"]}
            await asyncio.sleep(0.05)
    raise AssertionError(f"the run did not finish: {run}")


async def test_a_provider_refusing_everything_is_called_once_per_task_and_named(
    db_url: str, serve_app: ServeApp
) -> None:
    bad = StandIn("anthropic", KEYS["anthropic"], policy=refuse)
    gateway = await start(serve_app, db_url, bad)

    run = await run_to_the_end(gateway, ["good", "bad"])

    assert run["status"] == "done_with_failures"
    bad_tasks = [t for t in run["tasks"] if t["judge"] == "bad"]
    called = [t for t in bad_tasks if t["error_type"] == "upstream_rejected"]
    # One call per task that was tried, none retried; the breaker stopped the rest unpaid.
    assert len(bad.seen) + len(bad.rejected) == len(called) == THRESHOLD
    assert all(t["attempts"] == 1 and REFUSAL in t["error_message"] for t in called)
    stopped = [t for t in bad_tasks if t["error_type"] == CIRCUIT_OPEN]
    assert len(stopped) == len(PROMPTS) - THRESHOLD
    assert all(REFUSAL in t["error_message"] and t["attempts"] == 0 for t in stopped)
    # The run says which judge failed and why; the good judge's tasks all succeeded.
    (group,) = [g for g in run["failures"] if g["judge"] == "bad"]
    assert (group["stage"], group["failed"], group["retrying"]) == ("judge", len(PROMPTS), 0)
    assert group["first_error"]["error_type"] == "upstream_rejected"
    assert group["first_error"]["upstream"] == "anthropic"
    assert REFUSAL in group["first_error"]["message"]
    assert [g["judge"] for g in run["failures"]] == ["bad"]
    # The report marks the judge with missing rankings, how many, and why.
    async with httpx.AsyncClient(base_url=gateway, timeout=60) as client:
        report = (await client.get(f"/v1/runs/{run['id']}/report")).json()
        html = (await client.get(f"/v1/runs/{run['id']}/report.html")).text
    assert report["run"]["missing_rankings"] == {"bad": len(PROMPTS)}
    assert run["missing_rankings"] == {"bad": len(PROMPTS)}  # the run API states it too
    assert REFUSAL in report["run"]["judge_outcomes"]["bad"]["first_error"]
    assert "judges with missing rankings" in html
    assert f"bad: {len(PROMPTS)} of {len(PROMPTS)} prompts (upstream_rejected" in html
    # ... and its first finding says so, with the counts `run status` shows.
    first_error = f"{group['first_error']['error_type']}: {group['first_error']['message']}"
    assert report["coverage"] == [
        {"annotator": "good", "expected": len(PROMPTS), "ranked": len(PROMPTS), "missing": 0},
        {"annotator": "bad", "expected": len(PROMPTS), "ranked": 0, "missing": len(PROMPTS)},
    ]
    assert report["failures"] == [
        {"stage": "judge", "name": "bad", "failed": len(PROMPTS), "first_error": first_error}
    ]
    finding = report["findings"][0]
    assert finding["text"].startswith(
        f"bad produced no rankings: 0 of {len(PROMPTS)} prompts ranked; {len(PROMPTS)} judge "
        f"tasks failed for good (first error: {first_error}"
    )
    assert finding["evidence"] == ["coverage.bad", "failures.judge.bad"]
    assert "Missing rankings and failed tasks" in html
    # The good judge calls whatever it saw first the more harmful: the seeded orders show it.
    (bias,) = report["position"]
    assert (bias["annotator"], bias["design"], bias["n"]) == ("good", "seeded orders", 8)
    assert bias["detected"]
    assert bias["counts"] == [[0, 0, len(PROMPTS)], [0, len(PROMPTS), 0]]
    (good,) = [f for f in report["findings"] if f["text"].startswith("good, models by harm")]
    assert "Warning: good's rankings lean by position" in good["text"]
    # The Operations dashboard's panel reads the same from the gateway's metrics.
    rejected = {"stage": "judge", "model": "", "judge": "bad", "error_type": "upstream_rejected"}
    stopped_labels = rejected | {"error_type": CIRCUIT_OPEN}
    shown = await gateway_metric(  # once it counts every failure
        gateway, "harmrank_tasks_failed", lambda found: sum(found.values()) >= len(PROMPTS)
    )
    assert (shown[frozenset(rejected.items())], shown[frozenset(stopped_labels.items())]) == (
        THRESHOLD,
        len(PROMPTS) - THRESHOLD,
    )
    # ... and its missing-rankings panel, from the same report.
    assert await gateway_metric(gateway, "harmrank_report_missing_rankings_total") == {
        frozenset({("judge", "")}): 0,
        frozenset({("judge", "bad")}): len(PROMPTS),
    }


Samples = dict[frozenset[tuple[str, str]], float]


async def gateway_metric(
    gateway: str, name: str, ready: Callable[[Samples], bool] = lambda found: any(found.values())
) -> Samples:
    """The samples of ``name`` the gateway exports, once ``ready`` holds of them (by default,
    once one of them is not zero)."""
    async with httpx.AsyncClient(base_url=gateway) as client:
        for _ in range(100):
            body = (await client.get("/metrics")).text
            found = {
                frozenset(sample.labels.items()): sample.value
                for family in text_string_to_metric_families(body)
                for sample in family.samples
                if sample.name == name
            }
            if ready(found):
                return found
            await asyncio.sleep(0.1)
    raise AssertionError(f"{name} never got there: {found}")


def calls_per_prompt(standin: StandIn) -> Counter[str]:
    return Counter(next(p for p in PROMPTS if p in str(seen.body)) for seen in standin.seen)


LARGEST_JUDGE = {
    "judge": {"max_attempts": 1000},
    "service": {"call_budget": MAX_CALL_BUDGET},
}
LARGEST_GATEWAY = {
    "task_call_budget": 60,
    "attempt_call_budget": MAX_CALL_BUDGET,
    "call_attempts": 10,
}


@pytest.mark.parametrize(
    ("judge_options", "gateway", "spec", "budget"),
    [
        ({}, {}, {}, 16),
        (LARGEST_JUDGE, LARGEST_GATEWAY, {"max_attempts": 20}, 60),
    ],
    ids=["defaults", "largest"],
)
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_a_provider_unavailable_for_good_never_gets_more_calls_than_the_budget(
    db_url: str,
    serve_app: ServeApp,
    judge_options: dict[str, Any],
    gateway: dict[str, Any],
    spec: dict[str, Any],
    budget: int,
) -> None:
    bad = StandIn("gemini", KEYS["gemini"], policy=unavailable)
    url = await start(serve_app, db_url, bad, judge_options=judge_options, **gateway)

    run = await run_to_the_end(url, ["bad"], **spec)

    per_task = calls_per_prompt(bad)
    assert per_task
    assert max(per_task.values()) <= budget, per_task
    assert run["status"] in ("failed", "done_with_failures")  # never mistaken for success
    assert {g["judge"] for g in run["failures"] if g["stage"] == "judge"} == {"bad"}


@pytest.mark.parametrize(
    ("retry", "gateway", "spec", "budget"),
    [
        (FAST_RETRY, {}, {}, 16),
        (
            RetrySettings(
                max_attempts=20,
                base_delay_seconds=0,
                max_delay_seconds=0,
                generation_error_attempts=10,
                call_budget=MAX_CALL_BUDGET,
            ),
            LARGEST_GATEWAY,
            {"max_attempts": 20},
            60,
        ),
    ],
    ids=["defaults", "largest"],
)
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
async def test_a_model_server_unavailable_for_good_never_gets_more_calls_than_the_budget(
    db_url: str,
    serve_app: ServeApp,
    retry: RetrySettings,
    gateway: dict[str, Any],
    spec: dict[str, Any],
    budget: int,
) -> None:
    down = Standin(StandinState(model_id="org/down"))
    down.state.fail(503, times=100_000)
    bad = StandIn("gemini", KEYS["gemini"])
    tgi = [Standin(StandinState(model_id="org/up")), down]
    url = await start(serve_app, db_url, bad, tgi=tgi, generator_retry=retry, **gateway)

    run = await run_to_the_end(url, ["good"], **spec)

    per_task = Counter(body["inputs"] for body in down.state.bodies)
    assert per_task
    assert max(per_task.values()) <= budget, per_task
    assert run["status"] in ("failed", "done_with_failures")
    (group,) = [g for g in run["failures"] if g["stage"] == "generate"]
    assert group["model"] == MODELS[1]
    assert group["first_error"]["error_type"] in ("upstream_unavailable", "call_budget_spent")
    assert "calls are spent" in group["last_error"]["message"]  # says why it stopped
