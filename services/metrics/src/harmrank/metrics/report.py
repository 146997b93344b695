"""One report for a set of annotators: every figure the metrics library computes.

Per annotator: N/A rate and most-harmful share, pairwise wins (least harm) with bootstrap
intervals and Bradley–Terry strengths, and the two rank histograms. Per pair of annotators:
every agreement figure with its interval and chance baseline. The conventions that define the
numbers travel with them in ``conventions``.

With ``ReportSettings.human_reference`` the report also has the human reference
(``aggregate_humans.human_reference``) as one more annotator: pairs against it split by how much
the humans agreed on the item, and ``Report.human_reference`` says how it was made.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from itertools import combinations

from harmrank.common.errors import InvalidInput
from harmrank.metrics.aggregate_humans import (
    HumanReference,
    ReferenceSpec,
    ReferenceSummary,
    human_reference,
    versus_reference,
)
from harmrank.metrics.agreement import AgreementResult, Clusters, agreement
from harmrank.metrics.coverage import (
    Coverage,
    RunFacts,
    TaskFailures,
    coverage,
    coverage_findings,
)
from harmrank.metrics.findings import Finding, findings
from harmrank.metrics.harm_rates import HarmRates, harm_rates
from harmrank.metrics.histograms import RankHistogram, complete_rank_histogram, rank_histogram
from harmrank.metrics.paired import PairedDifference, paired_comparisons
from harmrank.metrics.params import AgreementSettings
from harmrank.metrics.position import PositionBias, seeded_orders
from harmrank.metrics.position import fixed_order as position_bias
from harmrank.metrics.rankings import AnnotatorRankings
from harmrank.metrics.rbo import EMPTY_CONVENTION
from harmrank.metrics.rbo_known import DEFINITION as RBO_KNOWN_DEFINITION
from harmrank.metrics.report_ppi import PPISection, PPISpec, add_jury, ppi_section
from harmrank.metrics.sensitivity import Concordance, SensitivityEntry, Variant, sensitivity
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
Pair = tuple[str, str]


@dataclass(frozen=True)
class ReportSettings(AgreementSettings):
    human_reference: ReferenceSpec | None = None
    """Aggregate these humans into one reference annotator (None: no human reference)."""

    def conventions(self) -> dict[str, str]:
        reference = self.human_reference
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
            "bootstrap": self._bootstrap(),
            "rbo_headline": RBO_KNOWN_DEFINITION,
            "rbo_paper": (
                "RBO_ext on harmful-only lists is the paper's convention, kept for comparison: "
                "it scores 1.0 when one list is the start of the other (['a'] against "
                "['a', 'b', 'c']) although the annotators disagree about the missing responses, "
                "so it can reward disagreement; the tied-list figure cannot fall far below 1 "
                "either (a full reversal of three items scores 0.855 at p = 0.9)"
            ),
            "chance_corrected": (
                "(value - chance) / (1 - chance): 0 = what chance gives, 1 = perfect agreement, "
                "so figures with different chance floors can be compared; its interval comes "
                "from the same resamples, chance recomputed on each"
            ),
            "chance": (
                "one annotator's ranking replaced by a uniformly random valid ranking with the "
                "same number of N/As"
            ),
            **({"human_reference": reference.stated()} if reference else {}),
        }

    def _bootstrap(self) -> str:
        unit = "prompts"
        if self.cluster_key is not None:
            unit = (
                f"clusters of prompts ({self.cluster_key}; whole clusters drawn with "
                "replacement, the prompt-level interval shown beside it)"
            )
        return (
            f"percentile bootstrap over {unit}, {self.resamples} resamples, "
            f"seed {self.seed}, {self.confidence:.0%} intervals"
        )


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
    human_reference: ReferenceSummary | None = None
    ppi: PPISection | None = None
    """The jury and the prediction-powered estimates (``report_ppi``), when asked for."""
    reference: str | None = None  # the annotator the others are compared with (the humans)
    paired: list[PairedDifference] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    sensitivity: list[SensitivityEntry] = field(default_factory=list)
    concordance: list[Concordance] = field(default_factory=list)
    position: list[PositionBias] = field(default_factory=list)
    coverage: list[Coverage] = field(default_factory=list)
    """Per annotator asked to rank a number of prompts (a run's judges): how many it ranked."""
    failures: list[TaskFailures] = field(default_factory=list)


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


def _pairs(names: Sequence[str], pairs: Sequence[Pair] | None) -> list[Pair]:
    if pairs is None:
        return list(combinations(names, 2))
    unknown = sorted({n for pair in pairs for n in pair} - set(names))
    if unknown:
        raise InvalidInput(f"pairs name unknown annotators: {', '.join(unknown)}")
    return list(pairs)


def _shares(a: AnnotatorRankings, b: AnnotatorRankings) -> bool:
    return bool(set(a.prompts) & set(b.prompts))


def reference_pairs(
    annotators: Sequence[AnnotatorRankings],
    reference: AnnotatorRankings | None,
    humans: Collection[str],
    *,
    compared: Collection[str] | None = None,
) -> list[Pair]:
    """The pairs of a report with a human reference, sharing a prompt, the headline first.

    First each annotator that is not one of the reference's ``humans`` against the reference;
    then every other pair, except one of those annotators against an individual human of the
    reference (the reference stands for them). ``compared``, when given, limits the left-hand
    annotator of every pair to those names.
    """

    def wanted(a: AnnotatorRankings) -> bool:
        return compared is None or a.annotator in compared

    others = [a for a in annotators if a.annotator not in humans]
    first = [
        (a.annotator, reference.annotator)
        for a in others
        if reference is not None and wanted(a) and _shares(a, reference)
    ]
    rest = [
        (a.annotator, b.annotator)
        for a, b in combinations(annotators, 2)
        if wanted(a) and _shares(a, b) and (a.annotator in humans) == (b.annotator in humans)
    ]
    return first + rest


def _reference(
    by_name: dict[str, AnnotatorRankings],
    settings: ReportSettings,
    humans: Sequence[AnnotatorRankings],
) -> HumanReference | None:
    spec = settings.human_reference
    if spec is None:
        return None
    if spec.name in by_name:
        raise InvalidInput(f"an annotator is named {spec.name!r}, the human reference's name")
    return human_reference([*by_name.values(), *humans], spec)


def pair_agreement(
    a: AnnotatorRankings,
    b: AnnotatorRankings,
    settings: ReportSettings,
    reference: str | None,
    clusters: Clusters | None = None,
) -> AgreementResult:
    """A against B under the report's settings; against the human reference named
    ``reference``, split by how much the humans agreed on the item."""
    compare = versus_reference if b.annotator == reference else agreement
    return compare(a, b, settings, clusters=clusters)


def build_report(
    annotators: Sequence[AnnotatorRankings],
    settings: ReportSettings,
    *,
    pairs: Sequence[Pair] | None = None,
    progress: Progress | None = None,
    humans: Sequence[AnnotatorRankings] = (),
    ppi: PPISpec | None = None,
    clusters: Clusters | None = None,
    reference_name: str | None = None,
    decisions: Sequence[Variant] = (),
    concordance: Sequence[Concordance] = (),
    fixed_order: Sequence[str] = (),
    run: RunFacts | None = None,
) -> Report:
    """Compute the whole report; ``pairs`` (a, reference b) defaults to every pair.

    ``decisions`` gives the annotators under each choice of a data decision (every figure is
    recomputed under each); ``concordance`` is the evidence for a direction decision, computed
    by the caller that knows the data (``sensitivity.concordance``). ``fixed_order`` names the
    judges that saw every prompt's responses in one fixed order (model order): their position
    bias is tested against the reference. ``run`` says what a platform run asked for (the
    prompts each judge was to rank, the tasks that failed) and how its judges' rankings were
    shown (seeded orders: their position bias is tested on those).

    With ``settings.human_reference``, the reference (aggregating humans found among
    ``annotators`` or ``humans``, the latter not listed themselves) joins the annotators when
    any item qualifies for it. With ``ppi``, its judges' jury joins them too, and the report
    has the prediction-powered estimates (``report_ppi``).
    """
    if (settings.cluster_key is None) != (clusters is None):
        raise InvalidInput("a clustered bootstrap needs both settings.cluster_key and clusters")
    by_name = {a.annotator: a for a in annotators}
    if len(by_name) != len(annotators):
        raise InvalidInput("annotator names must be unique")
    models = {a.models for a in [*annotators, *humans]}
    if len(models) != 1:
        raise InvalidInput("every annotator must rank the same models in the same order")
    reference = _reference(by_name, settings, humans)
    if reference is not None and reference.rankings.prompts:
        by_name[reference.rankings.annotator] = reference.rankings
    made, pairs = add_jury(by_name, ppi, pairs) if ppi else (None, pairs)
    sections = {}
    for rankings in by_name.values():
        if progress:
            progress(f"figures of {rankings.annotator}")
        sections[rankings.annotator] = annotator_section(rankings, settings)
    name = reference.rankings.annotator if reference is not None else None
    chosen = _pairs(list(by_name), pairs)
    results = []
    for a, b in chosen:
        if progress:
            progress(f"agreement {a} vs {b}")
        results.append(pair_agreement(by_name[a], by_name[b], settings, name, clusters))
    summary = reference.summary if reference is not None else None
    extra = ppi_section(by_name, ppi, made) if ppi else None
    conventions = {**settings.conventions(), **(extra.conventions() if extra else {})}
    compared_with = name or reference_name
    if progress:
        progress("paired comparisons, data decisions and findings")
    paired, unpaired = paired_comparisons(by_name, chosen, compared_with, settings, clusters)
    if unpaired:
        conventions["paired_not_compared"] = (
            "paired comparisons need 2 prompts ranked by all four annotators; not compared: "
            + "; ".join(unpaired)
        )
    models_ = models.pop()
    position = [
        position_bias(by_name[j], by_name[compared_with])
        for j in fixed_order
        if compared_with is not None and compared_with in by_name
    ] + [seeded_orders(shown, settings.seed) for shown in (run.presented if run else ())]
    covered = coverage(annotators, run.expected) if run else []
    failures = list(run.failures) if run else []
    return Report(
        models_,
        settings,
        conventions,
        sections,
        results,
        summary,
        ppi=extra,
        reference=compared_with,
        paired=paired,
        findings=coverage_findings(covered, failures)
        + findings(sections, models_, results, paired, compared_with, position),
        sensitivity=sensitivity(_with_jury(decisions, ppi), chosen, settings),
        concordance=list(concordance),
        position=position,
        coverage=covered,
        failures=failures,
    )


def _with_jury(decisions: Sequence[Variant], ppi: PPISpec | None) -> list[Variant]:
    """Each choice's annotators plus the jury made from that choice's judges, so the jury's
    figures are recomputed under every data decision like everyone else's."""
    if ppi is None:
        return list(decisions)
    out = []
    for v in decisions:
        annotators = dict(v.annotators)
        add_jury(annotators, ppi, None)
        out.append(replace(v, annotators=annotators))
    return out
