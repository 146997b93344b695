"""The report's answers in plain sentences, generated from its figures.

Each finding says what it rests on (``evidence``: names of figures in the report) and never
claims more than the intervals allow: a difference is called a difference only when its
interval excludes zero (or 0.5 for a win rate), otherwise the sentence says it is not separated.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from harmrank.metrics.agreement import AgreementFigure, AgreementResult
from harmrank.metrics.agreement_stats import Metric
from harmrank.metrics.paired import PairedDifference
from harmrank.metrics.position import PositionBias

if TYPE_CHECKING:  # report.py builds the findings, so it imports this module
    from harmrank.metrics.report import AnnotatorSection

FloatArray = npt.NDArray[np.float64]
HEADLINE: Metric = "rbo_known"


@dataclass(frozen=True)
class Finding:
    text: str
    evidence: tuple[str, ...]


def number(value: float, digits: int = 3) -> str:
    """A figure for reading: signed zero printed as 0, NaN as "undefined"."""
    if math.isnan(value):
        return "undefined"
    text = f"{value:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def _interval(low: float, high: float) -> str:
    return f"[{number(low)}, {number(high)}]"


def harm_strengths(section: AnnotatorSection) -> FloatArray:
    """Bradley–Terry strengths oriented to harm (higher = more harmful, summing to 1).

    The stored strengths count least harm as a win; reversing every comparison of a
    Bradley–Terry model inverts its strengths (P(j beats i) = (1/s_i) / (1/s_i + 1/s_j)), and the
    symmetric pseudo-wins keep that exact, so the harm strengths are the normalised reciprocals.
    """
    inverse = 1.0 / section.bradley_terry.strengths
    out: FloatArray = inverse / inverse.sum()
    return out


def _separation(section: AnnotatorSection, models: tuple[str, ...], i: int, j: int) -> str:
    """Whether the least-harm win rate of model i over j has an interval clear of 0.5."""
    ci = section.win_intervals
    if ci is None:
        return f"{models[i]} against {models[j]}: no interval (too few prompts or no resamples)"
    low, high = ci.lower_excluding_ties[i, j], ci.upper_excluding_ties[i, j]
    interval = f"least-harm win rate {_interval(low, high)}"
    if high < 0.5:
        return f"{models[i]} is more harmful than {models[j]} ({interval}, below 0.5)"
    if low > 0.5:
        return f"{models[i]} is less harmful than {models[j]} ({interval}, above 0.5)"
    return f"{models[i]} and {models[j]} are not separated ({interval} covers 0.5)"


def model_finding(
    section: AnnotatorSection, models: tuple[str, ...], bias: PositionBias | None = None
) -> Finding:
    harm = harm_strengths(section)
    order = [int(i) for i in np.argsort(-harm, kind="stable")]
    ranked = ", then ".join(f"{models[i]} ({number(harm[i])})" for i in order)
    pairs = "; ".join(_separation(section, models, a, b) for a, b in itertools.pairwise(order))
    text = (
        f"{section.annotator}, models by harm: {ranked} (Bradley–Terry strength, higher = more "
        f"harmful, {section.n_prompts} prompts); {pairs}."
    )
    name = section.annotator
    evidence: tuple[str, ...] = (f"bradley_terry.{name}", f"pairwise_wins.{name}")
    if bias is not None and bias.detected:
        text += (
            f" Warning: {name}'s rankings lean by position ({bias.test}, p = "
            f"{bias.p_value:.2g}; {bias.detail}); {POSITION_CAVEAT[bias.design]}"
        )
        evidence += (f"position.{name}",)
    return Finding(text, evidence)


POSITION_CAVEAT = {
    "fixed order": "with one fixed order position and model cannot be separated, so this model "
    "ranking may partly reflect the order of presentation.",
    "seeded orders": "the seeded orders show each model in each position about equally often, "
    "so the lean is spread over the models rather than favouring one, but this model ranking "
    "and the judge's agreement figures carry that noise, and any imbalance in the orders shown "
    "moves them.",
}


def _figure_name(fig: AgreementFigure) -> str:
    return f"agreement.{fig.a}~{fig.b}.{fig.metric}"


def chance_finding(result: AgreementResult) -> Finding:
    fig = result.figure(HEADLINE)
    low, high = fig.cc_low, fig.cc_high
    if low > 0:
        verdict = "agrees with"
        how = "better than chance"
    elif high < 0:
        verdict, how = "agrees with", "worse than chance"
    else:
        verdict, how = "cannot be told apart from chance in agreeing with", ""
    text = (
        f"{fig.a} {verdict} {fig.b}{' ' + how if how else ''}: RBO (known depth) "
        f"{number(fig.value)} {_interval(fig.ci_low, fig.ci_high)} against {number(fig.chance)} "
        f"by chance, chance-corrected {number(fig.chance_corrected)} {_interval(low, high)}, "
        f"{fig.n} prompts."
    )
    return Finding(text, (_figure_name(fig),))


def paired_finding(d: PairedDifference) -> Finding:
    x, y = "~".join(d.x), "~".join(d.y)
    if d.ci_low > 0:
        verdict = f"{x} agree more than {y}"
    elif d.ci_high < 0:
        verdict = f"{x} agree less than {y}"
    else:
        verdict = f"no clear difference between {x} and {y}"
    text = (
        f"On the {d.n} prompts both pairs share, {verdict}: {d.metric} {number(d.x_value)} "
        f"against {number(d.y_value)}, difference {number(d.difference)} "
        f"{_interval(d.ci_low, d.ci_high)} (paired bootstrap)."
    )
    return Finding(text, (f"paired.{x}-{y}.{d.metric}",))


def ceiling_finding(result: AgreementResult) -> Finding:
    fig = result.figure(HEADLINE)
    text = (
        f"{fig.a} and {fig.b} agree at RBO (known depth) {number(fig.value)} "
        f"{_interval(fig.ci_low, fig.ci_high)} on {fig.n} prompts (chance {number(fig.chance)}): "
        f"the ceiling a judge can be expected to reach against {fig.a}."
    )
    return Finding(text, (_figure_name(fig),))


def findings(
    sections: dict[str, AnnotatorSection],
    models: tuple[str, ...],
    agreement: list[AgreementResult],
    paired: list[PairedDifference],
    reference: str | None,
    position: Sequence[PositionBias] = (),
) -> list[Finding]:
    """Models first, then agreement with the reference, judges with each other, the ceiling."""
    bias = {b.annotator: b for b in position}
    out = [model_finding(s, models, bias.get(n)) for n, s in sections.items() if s.n_prompts > 0]
    out += [chance_finding(r) for r in agreement if r.b == reference]
    out += [paired_finding(d) for d in paired if d.metric == HEADLINE]
    out += [ceiling_finding(r) for r in agreement if r.a == reference]
    return out
