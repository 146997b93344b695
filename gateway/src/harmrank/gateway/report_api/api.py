"""Report routes: a run's report as HTML; any annotators' report and agreement on a dataset.

A run's page is drawn from the report its score task stored; a dataset's report and agreement
are computed here, on request.

The human reference of a report is ``humans (aggregate)`` (``aggregate_humans.REFERENCE_NAME``):
per item, the aggregate of the human annotators' rankings; judges are compared with it.

The figures are CPU-bound (bootstrap, chance baselines, matplotlib), so they are computed in the
app's report processes (``jobs``), at most ``report_processes`` at once with ``report_queue``
more waiting; a request beyond those is refused at once (503 ``reports_busy`` with
``Retry-After``) rather than queued without end. An answer is kept while what it was computed
from is unchanged, and a request for a report being computed waits for that computation. A
route reads what it needs in a short session of its own and returns the connection to the pool
before it waits: a slow report never holds a connection other routes and the workers need.
Resamples are capped by ``report_max_resamples``.
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import HTMLResponse

from harmrank.common.errors import ErrorBody, InvalidInput
from harmrank.gateway.deps import Sessions
from harmrank.gateway.report_api import compute, inputs
from harmrank.gateway.report_api.jobs import (
    ReportLimits,
    Work,
    answer,
    as_html,
    as_json,
    report_jobs,
)
from harmrank.gateway.runs.api import RunId
from harmrank.gateway.settings import GatewaySettings
from harmrank.metrics.aggregate_humans import REFERENCE_NAME, NaRule
from harmrank.metrics.agreement import CATEGORY_CLUSTERS
from harmrank.metrics.report import ReportSettings

runs_router = APIRouter(prefix="/v1/runs", tags=["runs"])
datasets_router = APIRouter(prefix="/v1/datasets", tags=["reports"])

MAX_ANNOTATORS = 30

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


async def report_limits(request: Request) -> ReportLimits:
    """From the gateway's settings; an app built with other settings gets the defaults."""
    settings = getattr(request.app.state, "settings", None)
    return ReportLimits.of(settings if isinstance(settings, GatewaySettings) else None)


Limits = Annotated[ReportLimits, Depends(report_limits)]


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
) -> Response:
    """The run's report as a self-contained HTML page (figures embedded, conventions stated).

    When the run judged the dataset's imported responses and humans of kind `human` ranked
    them, the judges are compared with the human reference `humans (aggregate)` (their
    aggregate ranking per item; default parameters `na_rule=majority`, `min_annotators=1`,
    stated in the page), overall and split by how much the humans agreed on the item; the
    individual humans stay listed, and the expert or a stored aggregate are compared as they are.

    The page is drawn from the report the run's score task stored (the one
    `GET /v1/runs/{run_id}/report` answers): nothing is computed again.
    """
    jobs = report_jobs(request.app.state, limits)
    async with jobs.reading(), sessions() as session:

        async def prepare() -> Work:
            return partial(as_html, compute.run_html, await inputs.run_inputs(session, run_id))

        # Not kept (no version): a page is drawn again from what is stored on each request.
        future = await jobs.start(("run page", run_id), None, prepare)
    return await answer(future)


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
) -> Response:
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
    asked = (tuple(names), tuple(chosen or ()), pairs is None, p, resamples, seed)
    key = ("report", name, format, *asked, na_rule, min_annotators, cluster_by)
    jobs = report_jobs(request.app.state, limits)
    async with jobs.reading(), sessions() as session:
        version = await inputs.dataset_version(session, name)

        async def prepare() -> Work:
            found = await inputs.dataset_inputs(session, name, names)
            settings = compute.with_reference(plain, found, na_rule, min_annotators)
            if format == "html":
                return partial(as_html, compute.dataset_html, found, settings, chosen)
            return partial(as_json, compute.dataset_json, found, settings, chosen)

        future = await jobs.start(key, version, prepare)
    return await answer(future)


@datasets_router.get("/{name}/agreement", response_model=dict[str, Any], responses=_ERRORS)
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
) -> Response:
    """Agreement of annotator a with reference b over the prompts both ranked: every figure with
    its bootstrap interval, chance baseline and parameters. With b = `humans (aggregate)`, the
    human reference over every human of the dataset, the figures are also split by how much the
    humans agreed on the item, and `human_reference` says how it was made."""
    if a == b:
        raise InvalidInput("a and b must be two different annotators")
    plain = report_settings(p, resamples, seed, limits)
    key = ("agreement", name, a, b, p, resamples, seed, na_rule, min_annotators)
    jobs = report_jobs(request.app.state, limits)
    async with jobs.reading(), sessions() as session:
        version = await inputs.dataset_version(session, name)

        async def prepare() -> Work:
            found = await inputs.dataset_inputs(session, name, [a, b])
            named = found.reference_named
            reference = compute.with_reference(plain, found, na_rule, min_annotators)
            return partial(as_json, compute.agreement_json, found, reference if named else plain)

        future = await jobs.start(key, version, prepare)
    return await answer(future)
