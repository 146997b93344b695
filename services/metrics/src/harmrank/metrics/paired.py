"""Paired comparisons: is one agreement figure higher than another on the same prompts?

"Do judges agree with each other more than with humans?" compares, say, gpt4o~claude with
gpt4o~human. The two figures share prompts, so their intervals are not independent and
comparing two separate intervals is wrong. Here both figures are computed on the prompts all
annotators of the two pairs ranked, and every bootstrap resample draws the same prompts (or
clusters) for both, so the interval is that of the difference itself (a paired bootstrap).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from harmrank.common.errors import InvalidInput
from harmrank.metrics.agreement import Clusters, cluster_index
from harmrank.metrics.agreement_stats import STATS, statistics
from harmrank.metrics.bootstrap import (
    cluster_weights,
    percentile_intervals,
    resample_weights,
)
from harmrank.metrics.contributions import prompt_contributions
from harmrank.metrics.params import AgreementSettings
from harmrank.metrics.rankings import AnnotatorRankings

IntArray = npt.NDArray[np.int64]
Pair = tuple[str, str]
PAIRED_METRICS = ("rbo_known", "kendall_tau_b")
DEFINITION = (
    "x minus y on the prompts all four annotators share, with a paired percentile bootstrap: "
    "each resample draws the same prompts (or clusters) for both figures"
)


@dataclass(frozen=True)
class PairedDifference:
    x: Pair
    y: Pair
    metric: str
    difference: float
    ci_low: float
    ci_high: float
    n: int  # shared prompts both figures are computed on
    x_value: float
    y_value: float


def _column(metric: str) -> int:
    for i, stat in enumerate(STATS):
        if stat.metric == metric and (metric != "rbo" or stat.lists == "harmful"):
            return i
    raise InvalidInput(f"no agreement figure named {metric!r} to compare")


def _rows(r: AnnotatorRankings, prompts: Sequence[str]) -> IntArray:
    index = {p: i for i, p in enumerate(r.prompts)}
    return r.ranks[[index[p] for p in prompts]]


def paired_difference(
    x: tuple[AnnotatorRankings, AnnotatorRankings],
    y: tuple[AnnotatorRankings, AnnotatorRankings],
    metric: str,
    settings: AgreementSettings,
    clusters: Clusters | None = None,
) -> PairedDifference:
    """``metric`` of pair x minus that of pair y, with a paired bootstrap interval."""
    shared = set(x[0].prompts) & set(x[1].prompts) & set(y[0].prompts) & set(y[1].prompts)
    prompts = [p for p in x[0].prompts if p in shared]
    names = ((x[0].annotator, x[1].annotator), (y[0].annotator, y[1].annotator))
    if len(prompts) < 2:
        raise InvalidInput(f"pairs {names[0]} and {names[1]} share {len(prompts)} prompts")
    column = _column(metric)
    cx, cy = (
        prompt_contributions(_rows(a, prompts), _rows(b, prompts), settings.rbo) for a, b in (x, y)
    )
    boot = settings.bootstrap
    index = cluster_index(prompts, clusters)
    if index is None:
        weights = resample_weights(len(prompts), boot.resamples, boot.seed)
    else:
        weights = cluster_weights(index, boot.resamples, boot.seed)
    point = statistics(cx.total())[0, column] - statistics(cy.total())[0, column]
    samples = (
        statistics(cx.weighted(weights))[:, column] - statistics(cy.weighted(weights))[:, column]
    )
    low, high = percentile_intervals(samples[:, None], boot.confidence)
    return PairedDifference(
        names[0],
        names[1],
        metric,
        float(point),
        float(low[0]),
        float(high[0]),
        len(prompts),
        float(statistics(cx.total())[0, column]),
        float(statistics(cy.total())[0, column]),
    )


def comparisons(pairs: Sequence[Pair], reference: str | None) -> list[tuple[Pair, Pair]]:
    """(a~b, a~reference) and (a~b, b~reference) for every pair of non-reference annotators
    whose pairs with the reference are compared too: agreement with each other against
    agreement with the reference."""
    if reference is None:
        return []
    with_reference = {a for a, b in pairs if b == reference}
    out = []
    for a, b in pairs:
        if reference not in (a, b) and a in with_reference and b in with_reference:
            out += [((a, b), (a, reference)), ((a, b), (b, reference))]
    return out


def paired_comparisons(
    by_name: dict[str, AnnotatorRankings],
    pairs: Sequence[Pair],
    reference: str | None,
    settings: AgreementSettings,
    clusters: Clusters | None = None,
) -> tuple[list[PairedDifference], list[str]]:
    """Every comparison of ``comparisons`` under every metric of ``PAIRED_METRICS``, and what
    could not be compared: two pairs sharing fewer than 2 prompts (a small run, a judge that
    ranked few prompts) have no paired interval, which the report says instead of failing."""
    out, skipped = [], []
    for x, y in comparisons(pairs, reference):
        names = [by_name[n] for n in (*x, *y)]
        shared = set.intersection(*(set(r.prompts) for r in names))
        if len(shared) < 2:
            skipped.append(f"{'~'.join(x)} against {'~'.join(y)}: {len(shared)} shared prompts")
            continue
        out += [
            paired_difference(
                (names[0], names[1]), (names[2], names[3]), metric, settings, clusters
            )
            for metric in PAIRED_METRICS
        ]
    return out, skipped
