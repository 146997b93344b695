"""The CPU-bound part of the report endpoints: pure functions, run in a worker thread."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from itertools import combinations
from typing import Any
from urllib.parse import urlencode

from harmrank.gateway.report_api.inputs import DatasetInputs, RunInputs
from harmrank.gateway.reports.render import Page, html_report
from harmrank.gateway.reports.summary import build_summary
from harmrank.metrics.aggregate_humans import (
    NaRule,
    ReferenceSpec,
    human_reference,
)
from harmrank.metrics.agreement import category_clusters
from harmrank.metrics.rankings import AnnotatorRankings
from harmrank.metrics.report import (
    Report,
    ReportSettings,
    build_report,
    pair_agreement,
    reference_pairs,
)
from harmrank.metrics.serialize import to_jsonable

Pair = tuple[str, str]


def settings_json(settings: ReportSettings) -> dict[str, Any]:
    reference = settings.human_reference
    return {
        "p": settings.p,
        "resamples": settings.resamples,
        "seed": settings.seed,
        "confidence": settings.confidence,
        "rbo_variant": settings.rbo_variant,
        "rbo_ties": settings.rbo_ties,
        "human_reference": to_jsonable(reference) if reference else None,
    }


def with_reference(
    settings: ReportSettings, inputs: DatasetInputs, na_rule: NaRule, min_annotators: int
) -> ReportSettings:
    """The settings with the dataset report's human reference, when it has humans."""
    if not inputs.humans:
        return settings
    spec = ReferenceSpec(inputs.humans, na_rule, min_annotators)
    return dataclasses.replace(settings, human_reference=spec)


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
    """The run's report page, rendered from the report its score task stored (the figures
    are drawn here; nothing is computed again)."""
    report, notes = inputs.report, inputs.notes
    data = {"source": f"run {inputs.run_id} on dataset {inputs.dataset}", "run": notes}
    summary = build_summary(report, n_prompts=int(notes.get("prompts", 0)), data=data)
    return html_report(report, summary, _run_page(inputs, report))


def _run_page(inputs: RunInputs, report: Report) -> Page:
    notes = inputs.notes
    humans = notes.get("humans") or {}
    included = ", ".join(humans.get("included") or []) or "none"
    reason = humans.get("excluded_because")
    judges = notes.get("judges") or {}
    facts = [
        ("run", str(inputs.run_id)),
        ("dataset", inputs.dataset),
        ("prompts", str(notes.get("prompts", ""))),
        ("models (rank order)", ", ".join(report.models)),
        ("judges (prompts ranked)", ", ".join(f"{j} ({n})" for j, n in judges.items())),
        ("judges with missing rankings", _missing_rankings(notes)),
        ("humans", f"{included}" + (f" ({reason})" if reason else "")),
        *_reference_facts(report),
        ("pairs compared (a vs reference b)", ", ".join(f"{a} vs {b}" for a, b in _pairs(report))),
    ]
    return Page(
        title=f"harmrank: report of run {inputs.run_id}",
        explore=f"/explore/?run={inputs.run_id}",
        heading=f"Run {inputs.run_id}: how harmful are the models, and do the judges agree?",
        facts_title="The run",
        facts=tuple(facts),
    )


def _missing_rankings(notes: dict[str, Any]) -> str:
    """Each judge that ranked fewer prompts than the run has, how many it missed and why."""
    missing: dict[str, int] = notes.get("missing_rankings") or {}
    outcomes: dict[str, dict[str, Any]] = notes.get("judge_outcomes") or {}
    parts = []
    for judge, n in missing.items():
        why = (outcomes.get(judge) or {}).get("first_error")
        parts.append(
            f"{judge}: {n} of {notes.get('prompts')} prompts" + (f" ({why})" if why else "")
        )
    return "; ".join(parts) or "none"


def _reference_facts(report: Report) -> list[tuple[str, str]]:
    summary = report.human_reference
    if summary is None:
        return []
    text = (
        f"{summary.name}: the aggregate of {', '.join(summary.humans)} on "
        f"{summary.n_reference_items} of {summary.n_items} items; {summary.note}"
    )
    return [("human reference", text)]


def _pairs(report: Report) -> list[Pair]:
    return [(r.a, r.b) for r in report.agreement]


def dataset_report(
    inputs: DatasetInputs, settings: ReportSettings, pairs: Sequence[Pair] | None
) -> tuple[Report, dict[str, list[list[str]]]]:
    """The report of the chosen annotators; without ``pairs``, every pair that shares a prompt,
    the human reference's first, a non-human meeting the reference's humans only through it
    (the others are answered as left out, with the reason)."""
    left_out: dict[str, list[list[str]]] = {}
    if pairs is None:
        shared, disjoint = sharing_pairs(inputs.annotators)
        pairs = reference_pairs(inputs.annotators, _reference(inputs, settings), inputs.humans)
        left_out["pairs_without_shared_prompts"] = [list(p) for p in disjoint]
        left_out["pairs_through_reference"] = [
            list(p) for p in shared if p not in pairs and not set(p) <= set(inputs.humans)
        ]
    clusters = category_clusters(inputs.annotators) if settings.cluster_key else None
    report = build_report(
        inputs.annotators,
        settings,
        pairs=pairs,
        humans=list(inputs.unlisted),
        ppi=inputs.ppi_spec(settings.human_reference.name if settings.human_reference else None),
        clusters=clusters,
    )
    return report, left_out


def _reference(inputs: DatasetInputs, settings: ReportSettings) -> AnnotatorRankings | None:
    spec = settings.human_reference
    if spec is None:
        return None
    return human_reference([*inputs.annotators, *inputs.unlisted], spec).rankings


def dataset_json(
    inputs: DatasetInputs, settings: ReportSettings, pairs: Sequence[Pair] | None
) -> dict[str, Any]:
    report, left_out = dataset_report(inputs, settings, pairs)
    about = {
        "name": inputs.dataset,
        "source": inputs.source,
        "prompts_ranked": ranked_prompts([*inputs.annotators, *inputs.unlisted]),
        "pairs_without_shared_prompts": left_out.get("pairs_without_shared_prompts", []),
        "pairs_through_reference": left_out.get("pairs_through_reference", []),
    }
    body: dict[str, Any] = to_jsonable(report)
    return {"dataset": about, **body}


def dataset_html(
    inputs: DatasetInputs, settings: ReportSettings, pairs: Sequence[Pair] | None
) -> str:
    report, left_out = dataset_report(inputs, settings, pairs)
    data = {"source": f"dataset {inputs.dataset} ({inputs.source})"}
    ranked = ranked_prompts([*inputs.annotators, *inputs.unlisted])
    summary = build_summary(report, n_prompts=ranked, data=data)
    facts = [
        ("dataset", inputs.dataset),
        (
            "annotators (prompts ranked)",
            ", ".join(f"{a.annotator} ({len(a.prompts)})" for a in inputs.annotators),
        ),
        *_reference_facts(report),
        (
            "pairs compared (a vs reference b)",
            ", ".join(f"{a} vs {b}" for a, b in _pairs(report)) or "none",
        ),
    ]
    for key, label in (
        ("pairs_without_shared_prompts", "pairs without shared prompts"),
        ("pairs_through_reference", "pairs compared through the human reference instead"),
    ):
        if left_out.get(key):
            facts.append((label, ", ".join(f"{a} vs {b}" for a, b in left_out[key])))
    page = Page(
        title=f"harmrank: report on dataset {inputs.dataset}",
        explore=f"/explore/?{urlencode({'dataset': inputs.dataset})}",
        heading=f"Dataset {inputs.dataset}: how harmful are the models, and do annotators agree?",
        facts_title="The data",
        facts=tuple(facts),
    )
    return html_report(report, summary, page)


def agreement_json(inputs: DatasetInputs, settings: ReportSettings) -> dict[str, Any]:
    """Every agreement figure of a against reference b, with interval and chance baseline; the
    human reference (with ``settings.human_reference``) is split by how much the humans agreed
    on the item."""
    by_name = {r.annotator: r for r in inputs.annotators}
    extra: dict[str, Any] = {}
    spec = settings.human_reference
    if spec is not None:
        made = human_reference([*inputs.annotators, *inputs.unlisted], spec)
        by_name[spec.name] = made.rankings
        extra["human_reference"] = to_jsonable(made.summary)
    a, b = (by_name[n] for n in inputs.names)
    result = pair_agreement(a, b, settings, spec.name if spec is not None else None)
    body: dict[str, Any] = to_jsonable(result)
    return {
        "dataset": inputs.dataset,
        **body,
        "settings": settings_json(settings),
        "conventions": settings.conventions(),
        **extra,
    }
