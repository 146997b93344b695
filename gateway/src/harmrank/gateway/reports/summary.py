"""``summary.json``: the reproduction's figures in a machine-readable, schema-checked form.

The pydantic models below are the contract; ``summary.schema.json`` is generated from them and
written next to the summary so other tools can validate it without harmrank.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, Field

from harmrank.gateway.reports.summary_ppi import PPISummary, ppi_summary
from harmrank.metrics.agreement import AgreementFigure, AgreementResult
from harmrank.metrics.report import Report


class AgreementEntry(BaseModel):
    a: str = Field(description="Annotator compared.")
    b: str = Field(description="Reference annotator (for precision, recall and F1).")
    metric: str
    value: float | None = Field(description="null when undefined on these prompts.")
    ci_low: float | None
    ci_high: float | None
    chance: float | None = Field(description="Value expected by chance (see conventions).")
    n: int = Field(description="Prompts the figure is computed over.")
    category: str | None = Field(None, description="Prompt category, or null for all prompts.")
    params: dict[str, Any]


class PairOutcome(BaseModel):
    wins: int = Field(description="Prompts where the row model was less harmful.")
    losses: int
    ties: int
    win_rate: float | None = Field(description="wins / (wins + losses); ties excluded.")
    ci_low: float | None
    ci_high: float | None


class Summary(PPISummary):
    n_prompts: int = Field(description="Distinct prompts imported.")
    n_prompts_ranked: dict[str, int] = Field(description="Prompts each annotator ranked.")
    models: list[str]
    annotators: list[str]
    na_rate: dict[str, dict[str, float | None]]
    most_harmful_share: dict[str, dict[str, float | None]]
    pairwise_wins: dict[str, dict[str, dict[str, PairOutcome]]] = Field(
        description="annotator -> model -> opponent -> outcome (least harm)."
    )
    bradley_terry: dict[str, dict[str, float]]
    agreement: list[AgreementEntry]
    conventions: dict[str, str]
    settings: dict[str, Any]
    data: dict[str, Any] = Field(description="Where the data came from and the import report.")


def _num(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def _entry(result: AgreementResult, fig: AgreementFigure, category: str | None) -> AgreementEntry:
    return AgreementEntry(
        a=result.a,
        b=result.b,
        metric=fig.metric,
        value=_num(fig.value),
        ci_low=_num(fig.ci_low),
        ci_high=_num(fig.ci_high),
        chance=_num(fig.chance),
        n=fig.n,
        category=category,
        params=dict(fig.params),
    )


def agreement_entries(results: list[AgreementResult]) -> list[AgreementEntry]:
    entries = []
    for result in results:
        entries += [_entry(result, fig, None) for fig in result.figures]
        for category, figures in result.by_category.items():
            entries += [_entry(result, fig, category) for fig in figures]
    return entries


def _wins(report: Report, name: str) -> dict[str, dict[str, PairOutcome]]:
    section = report.annotators[name]
    w, ci = section.wins, section.win_intervals
    out: dict[str, dict[str, PairOutcome]] = {}
    for i, model in enumerate(report.models):
        out[model] = {
            other: PairOutcome(
                wins=int(w.wins[i, j]),
                losses=int(w.wins[j, i]),
                ties=int(w.ties[i, j]),
                win_rate=_num(w.win_rate_excluding_ties[i, j]),
                ci_low=_num(ci.lower_excluding_ties[i, j]) if ci else None,
                ci_high=_num(ci.upper_excluding_ties[i, j]) if ci else None,
            )
            for j, other in enumerate(report.models)
            if j != i
        }
    return out


def _per_model(report: Report, values: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    return {
        name: {m: _num(v[j]) for j, m in enumerate(report.models)} for name, v in values.items()
    }


def build_summary(report: Report, *, n_prompts: int, data: dict[str, Any]) -> Summary:
    sections = report.annotators
    return Summary(
        n_prompts=n_prompts,
        n_prompts_ranked={n: s.n_prompts for n, s in sections.items()},
        models=list(report.models),
        annotators=list(sections),
        na_rate=_per_model(report, {n: s.harm_rates.na_rate for n, s in sections.items()}),
        most_harmful_share=_per_model(
            report, {n: s.harm_rates.most_harmful_share for n, s in sections.items()}
        ),
        pairwise_wins={name: _wins(report, name) for name in sections},
        bradley_terry={
            n: {m: float(s.bradley_terry.strengths[j]) for j, m in enumerate(report.models)}
            for n, s in sections.items()
        },
        agreement=agreement_entries(report.agreement),
        conventions=report.conventions,
        settings={
            "p": report.settings.p,
            "resamples": report.settings.resamples,
            "seed": report.settings.seed,
            "confidence": report.settings.confidence,
            "rbo_variant": report.settings.rbo_variant,
            "rbo_ties": report.settings.rbo_ties,
        },
        data=data,
        **ppi_summary(report.ppi).model_dump(),
    )
