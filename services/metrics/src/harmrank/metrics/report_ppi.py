"""A report's part on the judges as a jury and on prediction-powered estimates.

With a ``PPISpec`` a report gets: the jury of its judges (two or more) as one more annotator,
compared with the humans like any judge; per judge and the jury, the human-only, judge-only
(biased) and PPI++ estimates of every estimand over the prompts the truth annotator ranked
(``ppi_estimates``), stating the policy that chose the human labels; and, when asked, the
"how many human labels?" simulation (``label_budget``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harmrank.metrics.jury import JURY_NAME, Jury, jury
from harmrank.metrics.label_budget import BudgetSettings, LabelBudget, label_budget
from harmrank.metrics.ppi import METHOD_TEXT
from harmrank.metrics.ppi_estimates import PPIResult, ppi_estimates
from harmrank.metrics.rankings import AnnotatorRankings
from harmrank.metrics.wins import subset

Pair = tuple[str, str]
UNRECORDED_POLICY = (
    "uniform random, assumed: how the humans' prompts were chosen is not recorded, so the "
    "estimates are valid only if they were a uniform random sample of the judged prompts"
)


@dataclass(frozen=True)
class PPISpec:
    truth: str
    """The human annotator (or the human reference) taken as the truth."""
    judges: tuple[str, ...]
    """The judges: each a predictor; two or more also make the jury."""
    inclusion: Mapping[str, float] | None = None
    """Per prompt, its probability of being sent to humans (active policy); None: uniform."""
    policy: str = "uniform random"
    """How the human labels were chosen, stated in the report."""
    sample: frozenset[str] | None = None
    """The prompts drawn for humans, when the draws are known (with ``inclusion``): the truth's
    other rankings are left out, as are drawn prompts it has not ranked (yet)."""
    budget: BudgetSettings | None = None
    """Run the label-budget simulation with these settings (None: not run)."""
    confidence: float = 0.95


@dataclass(frozen=True, eq=False)
class PPISection:
    """What a report says on the jury and the estimates: JSON-ready, no rankings inside."""

    truth: str
    predictors: list[str]
    policy: str
    confidence: float
    jury: dict[str, Any] | None
    estimates: list[PPIResult] = field(default_factory=list)
    label_budget: LabelBudget | None = None
    notes: list[str] = field(default_factory=list)
    """What was asked and not done, with the reason."""

    def conventions(self) -> dict[str, str]:
        methods = "; ".join(f"{k}: {v}" for k, v in METHOD_TEXT.items())
        out = {
            "ppi": (
                f"truth {self.truth!r}; predictors {', '.join(self.predictors)}; human labels "
                f"chosen by {self.policy}; {self.confidence:.0%} intervals; {methods}"
            )
        }
        if self.jury is not None:
            j = self.jury
            out["jury"] = (
                f"the judges {', '.join(j['jurors'])} combined: harmful when "
                f"{j['harmful']}; ordered by {j['order']}; ties: {j['ties']}; on {j['prompts']} "
                f"({j['ties_broken']} ties broken, {j['left_out']} prompts left out)"
            )
        if self.label_budget is not None:
            out["human_label_budget"] = self.label_budget.settings.stated()
        return out


@dataclass(frozen=True)
class SamplingDesign:
    """How the annotation page chose the prompts humans label: stored, so stated as fact."""

    policy: str
    inclusion: Mapping[str, float]
    """Per prompt (drawn or not), its probability of being drawn."""
    sample: frozenset[str]


def platform_spec(
    truth: str | None, judges: Sequence[str], design: SamplingDesign | None = None
) -> PPISpec | None:
    """A run's or dataset report's spec: the human truth (the reference, or the one human)
    against its judges, weighted by the stored design when there is one; None when there is
    no truth or no judge."""
    if truth is None or not judges:
        return None
    if design is None:
        return PPISpec(truth=truth, judges=tuple(judges), policy=UNRECORDED_POLICY)
    return PPISpec(
        truth=truth,
        judges=tuple(judges),
        inclusion=design.inclusion,
        policy=design.policy,
        sample=design.sample,
    )


def in_design(
    truth: AnnotatorRankings, predictor: AnnotatorRankings, spec: PPISpec
) -> tuple[AnnotatorRankings, AnnotatorRankings, list[str]]:
    """The truth on the drawn prompts only, and the predictor on the prompts with a known
    probability minus those drawn and not labelled; notes say what was left out and why."""
    if spec.sample is None or spec.inclusion is None:
        return truth, predictor, []
    labelled = set(truth.prompts)
    unranked = spec.sample - labelled
    keep_t = np.array([p in spec.sample for p in truth.prompts], dtype=bool)
    keep_p = np.array(
        [p in spec.inclusion and p not in unranked for p in predictor.prompts], dtype=bool
    )
    notes = []
    if (~keep_t).any():
        notes.append(
            f"{predictor.annotator}: {int((~keep_t).sum())} prompts ranked by {spec.truth!r} "
            "were not drawn by the policy, so their chance of a label is unknown: not used"
        )
    left = int(sum(p in unranked for p in predictor.prompts))
    if left:
        notes.append(
            f"{predictor.annotator}: {left} prompts drawn for humans are not ranked by "
            f"{spec.truth!r} yet: left out of the population"
        )
    undrawn = int(sum(p not in spec.inclusion for p in predictor.prompts))
    if undrawn:
        notes.append(
            f"{predictor.annotator}: {undrawn} judged prompts were never drawn (no probability): "
            "left out of the population"
        )
    return subset(truth, keep_t), subset(predictor, keep_p), notes


def add_jury(
    by_name: dict[str, AnnotatorRankings], spec: PPISpec, pairs: Sequence[Pair] | None
) -> tuple[Jury | None, list[Pair] | None]:
    """Add the jury of the spec's judges to the annotators (and, with explicit pairs, the jury
    against the truth after the judges' pairs)."""
    judges = [by_name[j] for j in spec.judges if j in by_name]
    if len(judges) < 2 or JURY_NAME in by_name:
        return None, list(pairs) if pairs is not None else None
    made = jury(judges)
    by_name[JURY_NAME] = made.rankings
    if pairs is None or spec.truth not in by_name:
        return made, list(pairs) if pairs is not None else None
    return made, [*pairs, (JURY_NAME, spec.truth)]


def _predictors(spec: PPISpec, made: Jury | None) -> list[str]:
    return [*spec.judges, *([made.rankings.annotator] if made else [])]


def _estimates(
    truth: AnnotatorRankings, predictors: Sequence[AnnotatorRankings], spec: PPISpec
) -> tuple[list[PPIResult], list[str]]:
    results, notes = [], []
    for given in predictors:
        labels, predictor, left_out = in_design(truth, given, spec)
        notes.extend(left_out)
        shared = set(labels.prompts) & set(predictor.prompts)
        if len(shared) < 2:
            notes.append(
                f"{predictor.annotator}: {len(shared)} prompts ranked by {spec.truth!r} too; "
                "at least 2 are needed"
            )
            continue
        results.append(
            ppi_estimates(labels, predictor, inclusion=spec.inclusion, confidence=spec.confidence)
        )
    return results, notes


def ppi_section(
    by_name: Mapping[str, AnnotatorRankings], spec: PPISpec, made: Jury | None
) -> PPISection:
    """The jury's description, the estimates per predictor and, when asked, the simulation."""
    names = _predictors(spec, made)
    section = PPISection(
        spec.truth, names, spec.policy, spec.confidence, made.params() if made else None
    )
    truth = by_name.get(spec.truth)
    if truth is None:
        section.notes.append(f"no estimates: the truth annotator {spec.truth!r} has no rankings")
        return section
    predictors = [by_name[p] for p in names if p in by_name]
    estimates, notes = _estimates(truth, predictors, spec)
    section.estimates.extend(estimates)
    section.notes.extend(notes)
    if spec.budget is None or not predictors:
        return section
    budget = label_budget(truth, predictors, spec.budget)
    return dataclasses.replace(section, label_budget=budget)
