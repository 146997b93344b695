"""One report for a set of annotators: every figure the metrics library computes.

Per annotator: N/A rate and most-harmful share, pairwise wins (least harm) with bootstrap
intervals and Bradley–Terry strengths, and the two rank histograms. Per pair of annotators:
every agreement figure with its interval and chance baseline. The conventions that define the
numbers travel with them in ``conventions``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import combinations

from harmrank.common.errors import InvalidInput
from harmrank.metrics.agreement import AgreementResult, agreement
from harmrank.metrics.harm_rates import HarmRates, harm_rates
from harmrank.metrics.histograms import RankHistogram, complete_rank_histogram, rank_histogram
from harmrank.metrics.rankings import AnnotatorRankings
from harmrank.metrics.rbo import EMPTY_CONVENTION, Ties, Variant
from harmrank.metrics.wins import (
    CONVENTION as WINS_CONVENTION,
)
from harmrank.metrics.wins import (
    BradleyTerry,
    PairwiseWins,
    WinRateIntervals,
    bootstrap_win_rates,
    bradley_terry,
    pairwise_wins,
)

RANKING_CONVENTION = (
    "per prompt and annotator: 0 = not harmful (N/A); harmful responses ranked 1..k, "
    "the highest number the most harmful; no ties"
)
Progress = Callable[[str], None]


@dataclass(frozen=True)
class ReportSettings:
    p: float
    resamples: int = 1000
    seed: int = 0
    confidence: float = 0.95
    rbo_variant: Variant = "ext"
    rbo_ties: Ties = "w"

    def conventions(self) -> dict[str, str]:
        return {
            "ranking": RANKING_CONVENTION,
            "rbo": (
                f"Rank-Biased Overlap (Webber et al. 2010), variant {self.rbo_variant}, "
                f"p = {self.p}, tie handling {self.rbo_ties} (Corsi & Urbano 2024); "
                "lists 'harmful' = only harmful models, most harmful first; "
                "'tied' = all models, N/A ones one tie group at the bottom"
            ),
            "rbo_empty_lists": EMPTY_CONVENTION,
            "wins": WINS_CONVENTION,
            "bootstrap": (
                f"percentile bootstrap over prompts, {self.resamples} resamples, "
                f"seed {self.seed}, {self.confidence:.0%} intervals"
            ),
            "chance": (
                "one annotator's ranking replaced by a uniformly random valid ranking with the "
                "same number of N/As"
            ),
        }


@dataclass(frozen=True, eq=False)
class AnnotatorSection:
    annotator: str
    n_prompts: int
    harm_rates: HarmRates
    wins: PairwiseWins
    win_intervals: WinRateIntervals | None
    bradley_terry: BradleyTerry
    histogram_complete: RankHistogram
    histogram_all: RankHistogram


@dataclass(frozen=True, eq=False)
class Report:
    models: tuple[str, ...]
    settings: ReportSettings
    conventions: dict[str, str]
    annotators: dict[str, AnnotatorSection]
    agreement: list[AgreementResult]


def win_intervals(
    rankings: AnnotatorRankings, *, resamples: int, confidence: float, seed: int
) -> WinRateIntervals | None:
    """Bootstrap intervals of the win rates, or None when there is nothing to resample."""
    if resamples == 0 or len(rankings.prompts) < 2:
        return None
    return bootstrap_win_rates(rankings, n_resamples=resamples, confidence=confidence, seed=seed)


def annotator_section(rankings: AnnotatorRankings, settings: ReportSettings) -> AnnotatorSection:
    intervals = win_intervals(
        rankings, resamples=settings.resamples, confidence=settings.confidence, seed=settings.seed
    )
    return AnnotatorSection(
        annotator=rankings.annotator,
        n_prompts=len(rankings.prompts),
        harm_rates=harm_rates(rankings),
        wins=pairwise_wins(rankings),
        win_intervals=intervals,
        bradley_terry=bradley_terry(rankings),
        histogram_complete=complete_rank_histogram(rankings),
        histogram_all=rank_histogram(rankings),
    )


def _pairs(names: Sequence[str], pairs: Sequence[tuple[str, str]] | None) -> list[tuple[str, str]]:
    if pairs is None:
        return list(combinations(names, 2))
    unknown = sorted({n for pair in pairs for n in pair} - set(names))
    if unknown:
        raise InvalidInput(f"pairs name unknown annotators: {', '.join(unknown)}")
    return list(pairs)


def build_report(
    annotators: Sequence[AnnotatorRankings],
    settings: ReportSettings,
    *,
    pairs: Sequence[tuple[str, str]] | None = None,
    progress: Progress | None = None,
) -> Report:
    """Compute the whole report; ``pairs`` (a, reference b) defaults to every pair."""
    by_name = {a.annotator: a for a in annotators}
    if len(by_name) != len(annotators):
        raise InvalidInput("annotator names must be unique")
    models = {a.models for a in annotators}
    if len(models) != 1:
        raise InvalidInput("every annotator must rank the same models in the same order")
    sections = {}
    for rankings in annotators:
        if progress:
            progress(f"figures of {rankings.annotator}")
        sections[rankings.annotator] = annotator_section(rankings, settings)
    results = []
    for a, b in _pairs(list(by_name), pairs):
        if progress:
            progress(f"agreement {a} vs {b}")
        results.append(
            agreement(
                by_name[a],
                by_name[b],
                p=settings.p,
                resamples=settings.resamples,
                seed=settings.seed,
                confidence=settings.confidence,
                rbo_variant=settings.rbo_variant,
                rbo_ties=settings.rbo_ties,
            )
        )
    return Report(models.pop(), settings, settings.conventions(), sections, results)
