"""Report routes: a run's report as HTML; any annotators' report and agreement on a dataset.

A run's page is drawn from the report its score task stored; a dataset's report and agreement
are computed here, on request.

The human reference of a report is ``humans (aggregate)`` (``aggregate_humans.REFERENCE_NAME``):
per item, the aggregate of the human annotators' rankings; judges are compared with it.

The figures are CPU-bound (bootstrap, chance baselines, matplotlib), so they are computed in a
worker thread, at most ``report_threads`` at once, and the event loop stays free for other
requests. At most ``report_queue`` more wait for a thread; a request beyond those is refused at
once (503 ``reports_busy`` with ``Retry-After``) rather than queued without end. A route reads
its inputs in a short session of its own and returns the connection to the pool before it waits
or computes: a slow report never holds a connection other routes and the workers need.
Resamples are capped by ``report_max_resamples``.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any, ClassVar, Literal, TypeVar

import anyio
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse

from harmrank.common.errors import ErrorBody, HarmrankError, InvalidInput
from harmrank.gateway.deps import Sessions
from harmrank.gateway.report_api import compute, inputs
from harmrank.gateway.runs.api import RunId
from harmrank.gateway.settings import GatewaySettings
from harmrank.metrics.aggregate_humans import REFERENCE_NAME, NaRule
from harmrank.metrics.agreement import CATEGORY_CLUSTERS
from harmrank.metrics.report import ReportSettings

runs_router = APIRouter(prefix="/v1/runs", tags=["runs"])
datasets_router = APIRouter(prefix="/v1/datasets", tags=["reports"])

MAX_ANNOTATORS = 30
T = TypeVar("T")
_DEFAULTS = GatewaySettings.model_fields

_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No such dataset, run or annotator, or no report"},
    422: {"model": ErrorBody, "description": "Invalid parameters, or no shared prompts"},
    503: {"model": ErrorBody, "description": "Too many reports at once; see Retry-After"},
}
_HTML: dict[int | str, dict[str, Any]] = {
    **_ERRORS,
    200: {"description": "A self-contained HTML page", "content": {"text/html": {}}},
}

P = Annotated[float, Query(gt=0, lt=1, description="RBO persistence p (always explicit).")]
Resamples = Annotated[int, Query(ge=0, description="Bootstrap resamples over prompts.")]
Seed = Annotated[int, Query(ge=0, le=2**32 - 1, description="Seed of bootstrap and chance.")]
NaRuleQuery = Annotated[
    NaRule,
    Query(
        description=f"When `{REFERENCE_NAME}` calls a model harmful on an item: `majority` "
        "(strictly more than half of the item's human annotators ranked it harmful) or "
        "`unanimous` (N/A only when every one of them said N/A)."
    ),
]
MinAnnotators = Annotated[
    int,
    Query(
        ge=1,
        le=100,
        description=f"Human annotators an item needs to be in `{REFERENCE_NAME}`.",
    ),
]


@dataclass(frozen=True)
class ReportLimits:
    max_resamples: int
    threads: int
    queue: int


def report_limits(request: Request) -> ReportLimits:
    """From the gateway's settings; an app built with other settings gets the defaults."""
    settings = getattr(request.app.state, "settings", None)
    if isinstance(settings, GatewaySettings):
        return ReportLimits(
            settings.report_max_resamples, settings.report_threads, settings.report_queue
        )
    return ReportLimits(*(_DEFAULTS[f"report_{k}"].default for k in _LIMIT_FIELDS))


_LIMIT_FIELDS = ("max_resamples", "threads", "queue")
Limits = Annotated[ReportLimits, Depends(report_limits)]
RETRY_AFTER_SECONDS = 5


class ReportsBusy(HarmrankError):
    status_code = 503
    error_type = "reports_busy"
    headers: ClassVar[dict[str, str]] = {"Retry-After": str(RETRY_AFTER_SECONDS)}


@dataclass
class ReportGate:
    """The app's report threads and the requests admitted to them (running or waiting)."""

    limiter: anyio.CapacityLimiter
    admitted: int = 0


def _gate(request: Request, limits: ReportLimits) -> ReportGate:
    gate: ReportGate | None = getattr(request.app.state, "report_gate", None)
    if gate is None:
        gate = request.app.state.report_gate = ReportGate(anyio.CapacityLimiter(limits.threads))
    return gate


@contextlib.asynccontextmanager
async def report_slot(request: Request, limits: ReportLimits) -> AsyncIterator[None]:
    """A place among the running or waiting reports; 503 ``reports_busy`` when none is free."""
    gate = _gate(request, limits)
    if gate.admitted >= limits.threads + limits.queue:
        raise ReportsBusy(
            f"{gate.admitted} reports are being computed or waiting (at most "
            f"{limits.threads} at once, {limits.queue} waiting): retry in "
            f"{RETRY_AFTER_SECONDS} s (HARMRANK_GATEWAY_REPORT_THREADS, _REPORT_QUEUE)"
        )
    gate.admitted += 1
    try:
        yield
    finally:
        gate.admitted -= 1


async def in_thread(request: Request, limits: ReportLimits, work: Callable[[], T]) -> T:
    """Run CPU-bound work in a thread, at most ``limits.threads`` at once per app (call it
    inside ``report_slot``)."""
    return await anyio.to_thread.run_sync(work, limiter=_gate(request, limits).limiter)


def report_settings(p: float, resamples: int, seed: int, limits: ReportLimits) -> ReportSettings:
    if resamples > limits.max_resamples:
        raise InvalidInput(
            f"resamples: at most {limits.max_resamples} on this gateway "
            "(HARMRANK_GATEWAY_REPORT_MAX_RESAMPLES)"
        )
    return ReportSettings(p=p, resamples=resamples, seed=seed)


def annotator_names(raw: str) -> list[str]:
    names = [n.strip() for n in raw.split(",") if n.strip()]
    if not names:
        raise InvalidInput("annotators: name at least one annotator")
    if len(names) > MAX_ANNOTATORS:
        raise InvalidInput(f"annotators: at most {MAX_ANNOTATORS}")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InvalidInput(f"annotators: {', '.join(repeated)} named more than once")
    return names


def pair_list(raw: str | None, names: list[str]) -> list[compute.Pair] | None:
    if raw is None:
        return None
    pairs: list[compute.Pair] = []
    for item in (i.strip() for i in raw.split(",") if i.strip()):
        a, colon, b = item.partition(":")
        if not colon or not a.strip() or not b.strip() or ":" in b:
            raise InvalidInput(f"pairs: {item!r} is not a:b")
        pairs.append((a.strip(), b.strip()))
    unknown = sorted({n for pair in pairs for n in pair} - set(names))
    if unknown:
        raise InvalidInput(f"pairs: {', '.join(unknown)} not among the annotators")
    if not pairs:
        raise InvalidInput("pairs: name at least one pair a:b, or leave pairs out")
    return pairs


@runs_router.get("/{run_id}/report.html", response_class=HTMLResponse, responses=_HTML)
async def run_report_html(
    run_id: RunId, sessions: Sessions, request: Request, limits: Limits
) -> HTMLResponse:
    """The run's report as a self-contained HTML page (figures embedded, conventions stated).

    When the run judged the dataset's imported responses and humans of kind `human` ranked
    them, the judges are compared with the human reference `humans (aggregate)` (their
    aggregate ranking per item; default parameters `na_rule=majority`, `min_annotators=1`,
    stated in the page), overall and split by how much the humans agreed on the item; the
    individual humans stay listed, and the expert or a stored aggregate are compared as they are.

    The page is drawn from the report the run's score task stored (the one
    `GET /v1/runs/{run_id}/report` answers): nothing is computed again.
    """
    async with report_slot(request, limits):
        async with sessions() as session:
            found = await inputs.run_inputs(session, run_id)
        html = await in_thread(request, limits, partial(compute.run_html, found))
    return HTMLResponse(html)


@datasets_router.get("/{name}/report", responses=_HTML)
async def dataset_report(
    name: str,
    sessions: Sessions,
    request: Request,
    limits: Limits,
    annotators: Annotated[
        str,
        Query(
            max_length=4000,
            description="Comma-separated annotator names. The named annotators of kind human "
            f"make the human reference `{REFERENCE_NAME}`; name `{REFERENCE_NAME}` itself to "
            "aggregate every human of the dataset instead, without listing each.",
        ),
    ],
    p: P,
    resamples: Resamples = 1000,
    seed: Seed = 0,
    pairs: Annotated[
        str | None,
        Query(
            max_length=8000,
            description="Comma-separated `a:b` pairs (a against reference b); "
            "default: every pair that shares a prompt, the human reference's first, except "
            "that a non-human meets the reference's humans only through the reference.",
        ),
    ] = None,
    format: Annotated[Literal["json", "html"], Query(description="`json` or `html`.")] = "json",
    na_rule: NaRuleQuery = "majority",
    min_annotators: MinAnnotators = 1,
    cluster_by: Annotated[
        Literal["category"] | None,
        Query(
            description="Resample whole clusters of prompts for the intervals: `category` "
            "draws the prompts' categories (prompts without one are clusters of their own); "
            "the prompt-level interval is then reported beside each clustered one."
        ),
    ] = None,
) -> Any:
    """Every figure for the chosen annotators' per-prompt rankings of a dataset: harm rates,
    wins, histograms and agreement per pair, as JSON or a self-contained HTML page.

    With humans among the annotators, the human reference `humans (aggregate)` joins them:
    per item the humans' aggregate ranking (harmful by `na_rule`, ordered by mean rank with
    N/A = 0, ties reported and left out, `min_annotators` per item), with Krippendorff's α and
    pairwise exact agreement among the humans; judges are compared with it, overall and split
    by how much the humans agreed on the item. Its parameters are stated in
    `conventions.human_reference` and `human_reference`."""
    names = annotator_names(annotators)
    chosen = pair_list(pairs, [*names, REFERENCE_NAME])
    plain = report_settings(p, resamples, seed, limits)
    if cluster_by is not None:
        plain = dataclasses.replace(plain, cluster_key=CATEGORY_CLUSTERS)
    render = compute.dataset_html if format == "html" else compute.dataset_json
    async with report_slot(request, limits):
        async with sessions() as session:
            found = await inputs.dataset_inputs(session, name, names)
        settings = compute.with_reference(plain, found, na_rule, min_annotators)
        body = await in_thread(request, limits, partial(render, found, settings, chosen))
    return HTMLResponse(body) if isinstance(body, str) else JSONResponse(body)


@datasets_router.get("/{name}/agreement", responses=_ERRORS)
async def dataset_agreement(
    name: str,
    sessions: Sessions,
    request: Request,
    limits: Limits,
    a: Annotated[str, Query(min_length=1, max_length=100, description="Annotator compared.")],
    b: Annotated[
        str,
        Query(
            min_length=1,
            max_length=100,
            description=f"Reference annotator (for F1); `{REFERENCE_NAME}` for the aggregate "
            "of every human of the dataset.",
        ),
    ],
    p: P,
    resamples: Resamples = 1000,
    seed: Seed = 0,
    na_rule: NaRuleQuery = "majority",
    min_annotators: MinAnnotators = 1,
) -> dict[str, Any]:
    """Agreement of annotator a with reference b over the prompts both ranked: every figure with
    its bootstrap interval, chance baseline and parameters. With b = `humans (aggregate)`, the
    human reference over every human of the dataset, the figures are also split by how much the
    humans agreed on the item, and `human_reference` says how it was made."""
    if a == b:
        raise InvalidInput("a and b must be two different annotators")
    plain = report_settings(p, resamples, seed, limits)
    async with report_slot(request, limits):
        async with sessions() as session:
            found = await inputs.dataset_inputs(session, name, [a, b])
        named = found.reference_named
        settings = compute.with_reference(plain, found, na_rule, min_annotators) if named else plain
        return await in_thread(request, limits, partial(compute.agreement_json, found, settings))
