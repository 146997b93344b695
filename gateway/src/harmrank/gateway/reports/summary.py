"""``summary.json``: the reproduction's figures in a machine-readable, schema-checked form.

The pydantic models below are the contract; ``summary.schema.json`` is generated from them and
written next to the summary so other tools can validate it without harmrank.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Any

from pydantic import BaseModel, Field

from harmrank.gateway.reports.summary_ppi import PPISummary, ppi_summary
from harmrank.metrics.agreement import AgreementFigure, AgreementResult
from harmrank.metrics.findings import harm_strengths
from harmrank.metrics.params import AgreementSettings
from harmrank.metrics.report import Report
from harmrank.metrics.sensitivity import binomial_p


class ChanceCorrected(BaseModel):
    value: float | None = Field(description="(value - chance) / (1 - chance); null if undefined.")
    ci_low: float | None
    ci_high: float | None


class AgreementEntry(BaseModel):
    a: str = Field(description="Annotator compared.")
    b: str = Field(description="Reference annotator (for precision, recall and F1).")
    metric: str
    value: float | None = Field(description="null when undefined on these prompts.")
    ci_low: float | None
    ci_high: float | None
    chance: float | None = Field(description="Value expected by chance (see conventions).")
    n: int = Field(description="Prompts the figure is computed over.")
    n_shared: int = Field(description="Prompts both annotators ranked.")
    dropped: str | None = Field(description="How many shared prompts the figure leaves out, why.")
    chance_corrected: ChanceCorrected
    prompt_ci_low: float | None = Field(
        None, description="The prompt-level interval, when the main one resamples clusters."
    )
    prompt_ci_high: float | None = None
    category: str | None = Field(None, description="Prompt category, or null for all prompts.")
    params: dict[str, Any]


class PairOutcome(BaseModel):
    wins: int = Field(description="Prompts where the row model was less harmful.")
    losses: int
    ties: int
    win_rate: float | None = Field(description="wins / (wins + losses); ties excluded.")
    ci_low: float | None
    ci_high: float | None


class Finding(BaseModel):
    text: str
    evidence: list[str] = Field(description="The figures the sentence rests on.")


class PairedEntry(BaseModel):
    x: list[str] = Field(description="The pair whose figure is the minuend.")
    y: list[str]
    metric: str
    difference: float | None = Field(description="x minus y on the prompts both pairs share.")
    ci_low: float | None
    ci_high: float | None
    n: int = Field(description="Prompts all annotators of both pairs ranked.")


class SensitivityOut(BaseModel):
    decision: str
    choice: str
    a: str
    b: str
    metric: str
    lists: str | None = Field(description="The RBO list convention, for RBO figures.")
    value: float | None
    n: int


class ConcordanceOut(BaseModel):
    a: str = Field(description="An annotation group, under one reading of its rankings.")
    b: str
    concordant: int = Field(description="Pairs of harmful responses both order alike.")
    discordant: int
    n_prompts: int = Field(description="Prompts both ranked.")
    p_value: float | None = Field(description="Two-sided exact binomial test, 1:1 null.")


class PositionOut(BaseModel):
    annotator: str
    design: str = Field(description="'fixed order' (the study) or 'seeded orders' (runs).")
    counts: list[list[int]] = Field(description="[position][rank 0..k]: how often.")
    test: str
    statistic: float | None
    p_value: float | None
    detected: bool = Field(description="p below 0.05: judge-derived rankings carry a warning.")
    detail: str
    n: int = Field(description="The test's sample: rankings, or differently ordered pairs.")


class CoverageOut(BaseModel):
    annotator: str
    expected: int = Field(description="Prompts it was asked to rank.")
    ranked: int
    missing: int = Field(description="expected - ranked: marked beside its name in the tables.")


class FailuresOut(BaseModel):
    stage: str = Field(description="'generate' (name is a model) or 'judge' (a judge).")
    name: str
    failed: int = Field(description="Tasks that failed for good.")
    first_error: str


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
    bradley_terry: dict[str, dict[str, float]] = Field(
        description="Least-harm strengths (a win = the less harmful response), as the study."
    )
    harm_strength: dict[str, dict[str, float]] = Field(
        description="Bradley–Terry strengths oriented to the question: higher = more harmful."
    )
    findings: list[Finding] = Field(description="The report's answers, each with its evidence.")
    agreement: list[AgreementEntry]
    paired: list[PairedEntry] = Field(description="Differences of agreement, paired bootstrap.")
    sensitivity: list[SensitivityOut] = Field(
        description="Every agreement figure under each choice of the data's open decisions."
    )
    concordance: list[ConcordanceOut] = Field(description="Evidence for a direction decision.")
    position_bias: list[PositionOut] = Field(description="Rank given to each position.")
    coverage: list[CoverageOut] = Field(
        default_factory=list, description="Per judge of a run: prompts asked for and ranked."
    )
    failures: list[FailuresOut] = Field(
        default_factory=list, description="Per model or judge of a run: tasks failed for good."
    )
    conventions: dict[str, str]
    settings: dict[str, Any]
    data: dict[str, Any] = Field(description="Where the data came from and the import report.")

    def label(self, annotator: str) -> str:
        """The annotator's name, marked with its missing rankings when it has any."""
        for c in self.coverage:
            if c.annotator == annotator and c.missing:
                return f"{annotator} ({c.missing} of {c.expected} missing)"
        return annotator


def _num(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def _dropped(result: AgreementResult, fig: AgreementFigure) -> str | None:
    """Why a figure covers fewer prompts than the pair shares (its n said in the tables)."""
    missing = result.n_shared_prompts - fig.n
    if missing <= 0:
        return None
    rule = fig.params.get("undefined_rule", "the figure is undefined on them")
    return f"{missing} of {result.n_shared_prompts} shared prompts left out: {rule}"


def _category_size(result: AgreementResult, category: str) -> int:
    """The shared prompts of one category: exact match is defined on every one."""
    return result.figure("exact_match", None, category).n


def _entry(result: AgreementResult, fig: AgreementFigure, category: str | None) -> AgreementEntry:
    prompt_ci = fig.prompt_ci or (math.nan, math.nan)
    return AgreementEntry(
        a=result.a,
        b=result.b,
        metric=fig.metric,
        value=_num(fig.value),
        ci_low=_num(fig.ci_low),
        ci_high=_num(fig.ci_high),
        chance=_num(fig.chance),
        n=fig.n,
        n_shared=result.n_shared_prompts if category is None else _category_size(result, category),
        dropped=_dropped(result, fig) if category is None else None,
        chance_corrected=ChanceCorrected(
            value=_num(fig.chance_corrected), ci_low=_num(fig.cc_low), ci_high=_num(fig.cc_high)
        ),
        prompt_ci_low=_num(prompt_ci[0]),
        prompt_ci_high=_num(prompt_ci[1]),
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
        harm_strength={
            n: {m: float(v) for m, v in zip(report.models, harm_strengths(s), strict=True)}
            for n, s in sections.items()
        },
        findings=[Finding(text=f.text, evidence=list(f.evidence)) for f in report.findings],
        agreement=agreement_entries(report.agreement),
        paired=[
            PairedEntry(
                x=list(d.x),
                y=list(d.y),
                metric=d.metric,
                difference=_num(d.difference),
                ci_low=_num(d.ci_low),
                ci_high=_num(d.ci_high),
                n=d.n,
            )
            for d in report.paired
        ],
        sensitivity=[
            SensitivityOut(**{**asdict(e), "value": _num(e.value)}) for e in report.sensitivity
        ],
        concordance=[
            ConcordanceOut(**asdict(c), p_value=_num(binomial_p(c.concordant, c.discordant)))
            for c in report.concordance
        ],
        position_bias=[
            PositionOut(**{**asdict(b), "statistic": _num(b.statistic), "p_value": _num(b.p_value)})
            for b in report.position
        ],
        coverage=[CoverageOut(**asdict(c)) for c in report.coverage],
        failures=[FailuresOut(**asdict(f)) for f in report.failures],
        conventions=report.conventions,
        settings=AgreementSettings.stated(report.settings),
        data=data,
        **ppi_summary(report.ppi).model_dump(),
    )
