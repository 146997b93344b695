"""What does a task's work: one executor per stage, behind one Protocol.

Generate and judge call their services, each through one long-lived client from
``harmrank.common.http.create_client`` (its transport already retries briefly; a task that still
fails is retried later by the queue, with backoff). Score sends the run's rankings to the
metrics service, so the statistics scale with its replicas and the worker stays I/O-bound.

Transient or permanent is decided by the one table in ``harmrank.common.errors``: the
downstream's ``error_type`` first, its status second. A provider's permanent refusal
(``upstream_rejected``) or a model server refusing the input (``generation_validation``) fails
the task at once with the upstream's reason.

Retries happen once per hop: the clients here retry only a connection that could not be made
(nothing reached the service, nothing was paid for); the services retry their upstreams within
a call budget; the task queue retries whole tasks. :class:`TaskBudget` bounds the upstream
calls of a whole task across its attempts.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import httpx
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import DBAPIError

from harmrank.common.contracts.generation import GenerateRequest, GenerationResult
from harmrank.common.contracts.judging import JudgeRequest, JudgeResponse, JudgeResult
from harmrank.common.errors import HarmrankError, PayloadTooLarge, is_transient
from harmrank.common.http import call, upstream_error_for
from harmrank.gateway.runs.tasks import Failure, TaskFailed
from harmrank.gateway.runs.work import (
    JUDGE_ABSTAINED,
    GenerateWork,
    JudgeWork,
    Judgment,
    ScoreWork,
)
from harmrank.metrics.schemas import ReportRequest
from harmrank.metrics.settings import MetricsSettings

logger = logging.getLogger(__name__)

W_contra = TypeVar("W_contra", contravariant=True)
R_co = TypeVar("R_co", covariant=True)

TASK_BUDGET_SPENT = "task_call_budget_spent"


@dataclass(frozen=True)
class TaskBudget:
    """Upstream calls (to a provider or a model server) one task may make across its attempts.

    Each attempt is granted ``per_attempt`` calls, and every earlier attempt is counted as if it
    had used its whole grant, so no task makes more than ``per_task`` calls whatever its
    ``max_attempts`` and whatever the services' retry settings: they enforce the grant.
    """

    per_task: int = 16
    per_attempt: int = 4

    def grant(self, attempt: int) -> int:
        """The calls attempt number ``attempt`` (1-based) may make; fails the task at 0."""
        granted = min(self.per_attempt, self.per_task - (attempt - 1) * self.per_attempt)
        if granted <= 0:
            raise TaskFailed(
                TASK_BUDGET_SPENT,
                f"the task's budget of {self.per_task} upstream calls allows no attempt "
                f"{attempt} ({self.per_attempt} a attempt)",
                transient=False,
            )
        return granted

    def spent_after(self, attempt: int) -> bool:
        """Whether attempt number ``attempt`` used the last calls the task may make."""
        return self.per_task - attempt * self.per_attempt <= 0

    def settle(self, attempt: int, failure: Failure) -> Failure:
        """A transient failure of the attempt that spent the budget is the task's last: it
        fails for good with its own reason, and says why it is not tried again."""
        if not failure.transient or not self.spent_after(attempt):
            return failure
        spent = f"{failure.message} (not tried again: the task's {self.per_task} calls are spent)"
        return Failure(failure.error_type, spent, transient=False)


class Executor(Protocol[W_contra, R_co]):
    """Does one task's work; raises :class:`TaskFailed` (or a common upstream error) to fail."""

    async def execute(self, work: W_contra) -> R_co: ...


@dataclass(frozen=True)
class Executors:
    generate: Executor[GenerateWork, GenerationResult]
    judge: Executor[JudgeWork, Judgment]
    score: Executor[ScoreWork, dict[str, Any]]
    budget: TaskBudget | None = None
    """The call budget of generate and judge tasks; None: attempts alone bound them."""


def failure_of(exc: BaseException) -> Failure:
    """How a task that raised ``exc`` failed."""
    if isinstance(exc, TaskFailed):
        return exc.failure
    if isinstance(exc, httpx.RequestError):
        exc = upstream_error_for(exc, "downstream")
    if isinstance(exc, HarmrankError):
        return Failure(exc.error_type, exc.message, transient=is_transient(exc.error_type))
    if isinstance(exc, DBAPIError):
        return Failure("database_error", type(exc.orig).__name__, transient=True)
    if isinstance(exc, ValidationError):
        return Failure("invalid_upstream_answer", str(exc), transient=False)
    # A bug: retrying would fail the same way. The traceback goes to the log, not the row.
    logger.error("task failed unexpectedly", exc_info=exc)
    return Failure("internal", f"{type(exc).__name__} (see the worker's log)", transient=False)


_JSON = {"Content-Type": "application/json"}


async def post(
    client: httpx.AsyncClient, path: str, body: BaseModel, upstream: str, too_large: str = ""
) -> bytes:
    """POST the body; answer the success body, raise :class:`TaskFailed` for an error body.

    ``too_large``: what to do when the body is refused as too large (413), added to the
    task's error after the size sent."""
    # Serialised by pydantic straight to JSON bytes: a dict and json.dumps first built the
    # whole body twice (a 50,000-prompt run's report request: 30 MB and 2 s of CPU more).
    # Encoded here, not by httpx, to state its size in bytes when it is refused as too large.
    content = body.model_dump_json(exclude_none=True).encode()
    response = await call(
        client,
        "POST",
        path,
        upstream=upstream,
        accept_statuses=range(400, 600),
        content=content,
        headers=_JSON,
    )
    if response.status_code < 400:
        return response.content
    error_type, message = _error_of(response)
    message = f"{upstream} answered {response.status_code}: {message}"
    if response.status_code == 413:
        error_type = PayloadTooLarge.error_type
        if f"{len(content):,} bytes" not in message:  # a proxy's words: say what was sent
            message += f" (the request sent was {len(content):,} bytes)"
        message += too_large
    raise TaskFailed(error_type, message, transient=is_transient(error_type, response.status_code))


def _error_of(response: httpx.Response) -> tuple[str, str]:
    """The common error body's ``error_type`` and message; the status when there is none."""
    try:
        body = json.loads(response.content)
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error_type"), str):
        return body["error_type"], str(body.get("error", ""))
    return f"http_{response.status_code}", response.text[:500]


class GenerateExecutor:
    """``POST /v1/generate`` of the generator service."""

    def __init__(self, client: httpx.AsyncClient, budget: TaskBudget | None = None) -> None:
        self.client = client
        self.budget = budget or TaskBudget()

    async def execute(self, work: GenerateWork) -> GenerationResult:
        request = GenerateRequest(
            model=work.model,
            prompt=work.prompt,
            prompt_id=work.prompt_id,
            params=work.params,
            max_upstream_calls=self.budget.grant(work.attempt),
        )
        content = await post(self.client, "/v1/generate", request, "generator")
        return GenerationResult.model_validate_json(content)


class JudgeExecutor:
    """``POST /v1/judge`` of the judge service, one judge and one presentation order a call."""

    def __init__(self, client: httpx.AsyncClient, budget: TaskBudget | None = None) -> None:
        self.client = client
        self.budget = budget or TaskBudget()

    async def execute(self, work: JudgeWork) -> Judgment:
        request = JudgeRequest(
            prompt_id=work.prompt_id,
            prompt=work.prompt,
            responses=work.responses,
            judges=[work.judge],
            orders=1,
            first_repetition=work.order_index,
            max_provider_calls=self.budget.grant(work.attempt),
        )
        content = await post(self.client, "/v1/judge", request, "judge")
        answer = JudgeResponse.model_validate_json(content)
        result = next((r for r in answer.results if r.judge == work.judge), None)
        if result is None or len(result.judgments) != 1:
            raise TaskFailed(
                "invalid_upstream_answer",
                "judge answered another judge or not one judgment",
                transient=False,
            )
        return judgment_of(result, answer.models, list(work.responses))


def judgment_of(result: JudgeResult, answered: list[str], models: list[str]) -> Judgment:
    """The one order's judgment, ranks in our model order; an error or abstention fails."""
    order = result.judgments[0]
    if order.error is not None:
        transient = is_transient(order.error.error_type)
        raise TaskFailed(order.error.error_type, order.error.message, transient=transient)
    if order.abstention is not None or order.ranks is None:
        detail = order.abstention and f"{order.abstention.reason}: {order.abstention.detail}"
        # The judge's final word: asking again would pay for the same abstention.
        raise TaskFailed(JUDGE_ABSTAINED, detail or "no ranks", transient=False)
    by_model = dict(zip(answered, order.ranks, strict=True))
    details = result.model_dump(
        mode="json",
        include={"provider", "model", "template_id", "template_version", "usage", "cost_usd"},
    )
    details["provider_calls"] = order.provider_calls
    presentation = {
        "repetition": order.repetition,
        "order": order.order,
        "labels": order.labels,
        "repaired": order.repaired,
    }
    return Judgment([by_model[m] for m in models], order.raw_text or "", presentation, details)


def _prompts(work: ScoreWork) -> str:
    """The run's prompts, for an error message: as planned, else as ranked."""
    prompts = work.notes.get("prompts")
    if not isinstance(prompts, int):
        prompts = max(len(a.prompts) for a in work.annotators)
    return f"{prompts:,}"


class ScoreExecutor:
    """``POST /v1/report`` of the metrics service: the run's report, as the service built it."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def execute(self, work: ScoreWork) -> dict[str, Any]:
        content = await post(
            self.client,
            "/v1/report",
            ReportRequest.of(work.annotators, work.settings, work.pairs, work.ppi, work.run),
            "metrics",
            too_large=f": a report request holds the whole run's rankings ({_prompts(work)} "
            f"prompts); raise {MetricsSettings.env_name('max_body_bytes')} on the metrics "
            "service (and the body limit of any proxy in front of it), then resume the run "
            "(harmrank run resume)",
        )
        report = json.loads(content)
        if not isinstance(report, dict):
            raise TaskFailed(
                "invalid_upstream_answer", "metrics answered no report object", transient=False
            )
        return {"run": work.notes, **report}
