"""The CPU-bound part of the report endpoints: pure functions, run in a worker thread."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations
from typing import Any

from harmrank.gateway.report_api.inputs import DatasetInputs, RunInputs
from harmrank.gateway.reports.render import Page, html_report
from harmrank.gateway.reports.summary import build_summary
from harmrank.metrics.agreement import agreement
from harmrank.metrics.rankings import AnnotatorRankings
from harmrank.metrics.report import Report, ReportSettings, build_report
from harmrank.metrics.serialize import to_jsonable

Pair = tuple[str, str]


def settings_json(settings: ReportSettings) -> dict[str, Any]:
    return {
        "p": settings.p,
        "resamples": settings.resamples,
        "seed": settings.seed,
        "confidence": settings.confidence,
        "rbo_variant": settings.rbo_variant,
        "rbo_ties": settings.rbo_ties,
    }


def sharing_pairs(annotators: Sequence[AnnotatorRankings]) -> tuple[list[Pair], list[Pair]]:
    """Every pair, split into those that share a prompt and those that do not."""
    shared: list[Pair] = []
    disjoint: list[Pair] = []
    for a, b in combinations(annotators, 2):
        both = set(a.prompts) & set(b.prompts)
        (shared if both else disjoint).append((a.annotator, b.annotator))
    return shared, disjoint


def ranked_prompts(annotators: Sequence[AnnotatorRankings]) -> int:
    return len({p for a in annotators for p in a.prompts})


def run_html(inputs: RunInputs) -> str:
    """The run's report page, computed as its score task computed the stored JSON."""
    score = inputs.score
    report = build_report(score.annotators, score.settings, pairs=score.pairs)
    notes = score.notes
    data = {"source": f"run {inputs.run_id} on dataset {inputs.dataset}", "run": notes}
    summary = build_summary(report, n_prompts=int(notes.get("prompts", 0)), data=data)
    return html_report(report, summary, _run_page(inputs, report))


def _run_page(inputs: RunInputs, report: Report) -> Page:
    notes = inputs.score.notes
    humans = notes.get("humans") or {}
    included = ", ".join(humans.get("included") or []) or "none"
    reason = humans.get("excluded_because")
    facts = [
        ("run", str(inputs.run_id)),
        ("dataset", inputs.dataset),
        ("prompts", str(notes.get("prompts", ""))),
        ("models (rank order)", ", ".join(report.models)),
        ("judges (prompts ranked)", ", ".join(f"{j} ({n})" for j, n in notes["judges"].items())),
        ("humans", f"{included}" + (f" ({reason})" if reason else "")),
        ("pairs compared (a vs reference b)", ", ".join(f"{a} vs {b}" for a, b in _pairs(report))),
    ]
    return Page(
        title=f"harmrank: report of run {inputs.run_id}",
        heading=f"Run {inputs.run_id}: how harmful are the models, and do the judges agree?",
        facts_title="The run",
        facts=tuple(facts),
    )


def _pairs(report: Report) -> list[Pair]:
    return [(r.a, r.b) for r in report.agreement]


def dataset_report(
    inputs: DatasetInputs, settings: ReportSettings, pairs: Sequence[Pair] | None
) -> tuple[Report, list[Pair]]:
    """The report of the chosen annotators; without ``pairs``, every pair that shares a prompt
    (the others are answered as skipped)."""
    skipped: list[Pair] = []
    if pairs is None:
        shared, skipped = sharing_pairs(inputs.annotators)
        pairs = shared
    return build_report(inputs.annotators, settings, pairs=pairs), skipped


def dataset_json(
    inputs: DatasetInputs, settings: ReportSettings, pairs: Sequence[Pair] | None
) -> dict[str, Any]:
    report, skipped = dataset_report(inputs, settings, pairs)
    about = {
        "name": inputs.dataset,
        "source": inputs.source,
        "prompts_ranked": ranked_prompts(inputs.annotators),
        "pairs_without_shared_prompts": [list(p) for p in skipped],
    }
    body: dict[str, Any] = to_jsonable(report)
    return {"dataset": about, **body}


def dataset_html(
    inputs: DatasetInputs, settings: ReportSettings, pairs: Sequence[Pair] | None
) -> str:
    report, skipped = dataset_report(inputs, settings, pairs)
    data = {"source": f"dataset {inputs.dataset} ({inputs.source})"}
    summary = build_summary(report, n_prompts=ranked_prompts(inputs.annotators), data=data)
    facts = [
        ("dataset", inputs.dataset),
        (
            "annotators (prompts ranked)",
            ", ".join(f"{a.annotator} ({len(a.prompts)})" for a in inputs.annotators),
        ),
        (
            "pairs compared (a vs reference b)",
            ", ".join(f"{a} vs {b}" for a, b in _pairs(report)) or "none",
        ),
    ]
    if skipped:
        facts.append(("pairs without shared prompts", ", ".join(f"{a} vs {b}" for a, b in skipped)))
    page = Page(
        title=f"harmrank: report on dataset {inputs.dataset}",
        heading=f"Dataset {inputs.dataset}: how harmful are the models, and do annotators agree?",
        facts_title="The data",
        facts=tuple(facts),
    )
    return html_report(report, summary, page)


def agreement_json(inputs: DatasetInputs, settings: ReportSettings) -> dict[str, Any]:
    """Every agreement figure of a against reference b, with interval and chance baseline."""
    a, b = inputs.annotators
    result = agreement(
        a,
        b,
        p=settings.p,
        resamples=settings.resamples,
        seed=settings.seed,
        confidence=settings.confidence,
        rbo_variant=settings.rbo_variant,
        rbo_ties=settings.rbo_ties,
    )
    body: dict[str, Any] = to_jsonable(result)
    return {
        "dataset": inputs.dataset,
        **body,
        "settings": settings_json(settings),
        "conventions": settings.conventions(),
    }
