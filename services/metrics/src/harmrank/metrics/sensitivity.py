"""Sensitivity of the agreement figures to data decisions, and pairwise concordance.

A data decision (how to read a group's rankings, what to do with a judge's tied answer) has
choices; each choice gives a set of annotators' rankings. Every agreement figure is recomputed
under every choice, values only (no resampling), so a reader sees how far a decision moves it.

Concordance is the evidence for a direction decision: over prompts two annotators both ranked
and pairs of responses both call harmful, how often they order the pair the same way. An
annotator written in the opposite direction disagrees far more often than chance would.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy.stats import binomtest

from harmrank.metrics.agreement import agreement
from harmrank.metrics.params import AgreementSettings
from harmrank.metrics.rankings import AnnotatorRankings, align


@dataclass(frozen=True)
class Variant:
    decision: str
    choice: str
    annotators: Mapping[str, AnnotatorRankings]


@dataclass(frozen=True)
class SensitivityEntry:
    decision: str
    choice: str
    a: str
    b: str
    metric: str
    lists: str | None
    value: float
    n: int


def sensitivity(
    variants: Sequence[Variant], pairs: Sequence[tuple[str, str]], settings: AgreementSettings
) -> list[SensitivityEntry]:
    """Every agreement figure of every pair under every choice (point values)."""
    point = replace(settings, resamples=0)
    out = []
    for v in variants:
        for a, b in pairs:
            result = agreement(v.annotators[a], v.annotators[b], point)
            out += [
                SensitivityEntry(
                    v.decision, v.choice, a, b, f.metric, _lists(f.params), f.value, f.n
                )
                for f in result.figures
            ]
    return out


def _lists(params: Mapping[str, object]) -> str | None:
    lists = params.get("lists")
    return str(lists) if lists is not None else None


@dataclass(frozen=True)
class Concordance:
    a: str
    b: str
    concordant: int
    discordant: int
    n_prompts: int  # shared prompts


def concordance(a: AnnotatorRankings, b: AnnotatorRankings) -> Concordance:
    """Pairs of responses both annotators call harmful, ordered alike or oppositely."""
    prompts, ra, rb = align(a, b)
    i, j = np.triu_indices(ra.shape[1], k=1)
    both = (ra[:, i] > 0) & (ra[:, j] > 0) & (rb[:, i] > 0) & (rb[:, j] > 0)
    same = np.sign(ra[:, i] - ra[:, j]) == np.sign(rb[:, i] - rb[:, j])
    return Concordance(
        a.annotator, b.annotator, int((both & same).sum()), int((both & ~same).sum()), len(prompts)
    )


def binomial_p(concordant: int, discordant: int) -> float:
    """Two-sided exact binomial test of concordant = discordant (no direction preferred)."""
    total = concordant + discordant
    return float(binomtest(concordant, total, 0.5).pvalue) if total else float("nan")
