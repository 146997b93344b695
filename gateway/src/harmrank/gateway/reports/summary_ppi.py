"""``summary.json``'s part on the jury and the prediction-powered estimates (``report_ppi``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from harmrank.metrics.label_budget import LabelBudget
from harmrank.metrics.report_ppi import PPISection


class PPIEntry(BaseModel):
    judge: str = Field(description="The predictor: a judge or the jury.")
    estimand: str = Field(description="harm_rate | win_rate | mean_harm_rank")
    model: str = Field(description="The model, or 'a vs b' for a win rate of a against b.")
    method: str = Field(description="human_only | judge_only (biased) | ppi (PPI++)")
    estimate: float | None
    ci_low: float | None
    ci_high: float | None
    lam: float | None = Field(description="PPI++'s tuned lambda; null outside PPI.")
    biased: bool
    n_human: int = Field(description="Judged prompts with a human label.")
    n_judge: int = Field(description="Prompts the predictor ranked.")
    policy: str = Field(description="How the human labels were chosen.")


class BudgetEntry(BaseModel):
    estimand: str
    model: str
    judge: str
    n_human: int
    method: str = Field(description="human_only | judge_only | ppi")
    coverage: float = Field(description="Share of repetitions whose interval holds the truth.")
    mean_width: float
    bias: float = Field(description="Mean estimate minus the truth (all human labels).")
    human_only_equivalent_n: float | None = Field(
        None, description="PPI only: the human-only n with the same mean width."
    )


class PPISummary(BaseModel):
    jury: dict[str, Any] | None = Field(None, description="How the jury was made.")
    ppi: list[PPIEntry] = Field(default_factory=list)
    ppi_notes: list[str] = Field(default_factory=list, description="Estimates not made, and why.")
    human_label_budget: list[BudgetEntry] = Field(default_factory=list)
    human_label_budget_settings: dict[str, Any] | None = None


def _budget(budget: LabelBudget) -> tuple[list[BudgetEntry], dict[str, Any]]:
    rows = [BudgetEntry(**row.__dict__) for row in budget.rows]
    s = budget.settings
    settings = {
        "sample_sizes": list(s.sample_sizes),
        "repetitions": s.repetitions,
        "seed": s.seed,
        "confidence": s.confidence,
        "population": budget.population,
        "skipped": budget.skipped,
        "stated": s.stated(),
    }
    return rows, settings


def ppi_summary(section: PPISection | None) -> PPISummary:
    if section is None:
        return PPISummary()
    entries = [
        PPIEntry(
            judge=result.judge,
            estimand=e.estimand,
            model=e.subject,
            method=e.method,
            estimate=e.estimate,
            ci_low=e.ci_low,
            ci_high=e.ci_high,
            lam=e.lam,
            biased=e.biased,
            n_human=result.n_human,
            n_judge=result.n_judge,
            policy=section.policy,
        )
        for result in section.estimates
        for e in result.estimates
    ]
    rows, settings = _budget(section.label_budget) if section.label_budget else ([], None)
    return PPISummary(
        jury=section.jury,
        ppi=entries,
        ppi_notes=list(section.notes),
        human_label_budget=rows,
        human_label_budget_settings=settings,
    )
