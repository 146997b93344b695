"""Agreement between two annotators' harm rankings over the prompts both ranked.

Figures (A against B; every one also per prompt category when prompts carry one):

* ``rbo``: mean per-prompt RBO (``rbo.rbo``: variant ``ext`` by default, tie variant ``w`` by
  default, p explicit), once per list convention: ``harmful`` (only harmful models, most harmful
  first, possibly empty; empty lists follow ``rbo.EMPTY_CONVENTION``) and ``tied`` (all models,
  the N/A ones one tie group at the bottom).
* ``rbo_known``: the headline RBO, over the known depth (``rbo_known.py``): harmful lists are
  complete (a missing model is known N/A), so it is below 1 whenever the two rankings differ in
  which responses are harmful. ``rbo`` on ``harmful`` lists is the paper's convention, kept and
  labelled with its caveat (a list that is the start of the other scores 1.0).
* ``exact_match``: share of prompts where both rankings are identical.
* ``kendall_tau_b``: Kendall's tau-b per prompt over the models' ranks (N/As tie at 0), averaged
  over the prompts where it is defined. It is undefined when either ranking is constant (all N/A,
  or a single model); those prompts are excluded and counted in ``params["n_undefined"]``.
* ``krippendorff_alpha``: ordinal alpha over (prompt, model) units, the two annotators as
  coders, values = ranks 0..k (``alpha.py``).
* ``accuracy_harmful``, ``precision_harmful``, ``recall_harmful``, ``f1_harmful``: A's
  harmful/not-harmful calls (harmful = rank > 0) against B as reference, pooled over
  (prompt, model) cells (micro-averaged).

Each figure is a function of additive per-prompt contributions, so one matrix product gives every
bootstrap resample (``bootstrap.py``) and the chance baseline is the same function of expected
contributions (``chance.py``). Beside each figure, its chance-corrected value
``(value - chance) / (1 - chance)`` (0 = chance, 1 = perfect) with an interval from the same
resamples, chance recomputed in each. Intervals resample prompts, or whole clusters of prompts
(``clusters``: prompt -> cluster, e.g. the human annotation group), the prompt-level interval
then kept beside the clustered one. No shared prompts is an error (``InvalidInput``), not NaN
figures: an empty comparison is almost always a wrong pairing of annotators and should not
pass silently.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
import numpy.typing as npt

from harmrank.common.errors import InvalidInput
from harmrank.metrics.agreement_stats import STATS, Metric, stat_params, statistics
from harmrank.metrics.bootstrap import (
    BootstrapSpec,
    Contributions,
    cluster_weights,
    percentile_intervals,
    resample_weights,
)
from harmrank.metrics.chance import ChanceSpec, expected_contributions
from harmrank.metrics.contributions import prompt_contributions
from harmrank.metrics.params import AgreementSettings
from harmrank.metrics.rankings import AnnotatorRankings, ListConvention, align
from harmrank.metrics.resamples import Resamples

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Clusters = Mapping[str, str]
CHANCE_READING = "figure of the summed expected contributions (= its exact expectation, chance.py)"


@dataclass(frozen=True)
class AgreementFigure:
    a: str
    b: str
    metric: Metric
    value: float
    ci_low: float
    ci_high: float
    chance: float
    n: int  # prompts the figure is computed over (defined ones for tau)
    params: Mapping[str, object] = field(default_factory=dict)
    chance_corrected: float = float("nan")  # (value - chance) / (1 - chance)
    cc_low: float = float("nan")
    cc_high: float = float("nan")
    prompt_ci: tuple[float, float] | None = None  # the prompt-level interval, when clustered


@dataclass(frozen=True)
class AgreementResult:
    a: str
    b: str
    n_shared_prompts: int
    figures: tuple[AgreementFigure, ...]
    by_category: Mapping[str, tuple[AgreementFigure, ...]]

    def figure(
        self, metric: Metric, lists: ListConvention | None = None, category: str | None = None
    ) -> AgreementFigure:
        """The one figure of that metric (and list convention, for rbo), overall or per category."""
        figures = self.figures if category is None else self.by_category[category]
        for fig in figures:
            if fig.metric == metric and (metric == "rbo_known" or fig.params.get("lists") == lists):
                return fig
        raise KeyError((metric, lists, category))


@dataclass(frozen=True)
class PairData:
    """One pair's per-prompt contributions, observed and expected under the chance null, and
    each prompt's cluster (numbered 0..G-1) when intervals resample clusters."""

    a: str
    b: str
    contrib: Contributions
    expected: Contributions
    chance_method: str
    cluster_of: IntArray | None = None

    def subset(self, rows: IntArray) -> PairData:
        clusters = None
        if self.cluster_of is not None:  # renumber the clusters present in the subset
            clusters = np.unique(self.cluster_of[rows], return_inverse=True)[1].astype(np.int64)
        contrib, expected = self.contrib.take(rows), self.expected.take(rows)
        return PairData(self.a, self.b, contrib, expected, self.chance_method, clusters)

    def weights(self, boot: BootstrapSpec, *, by_prompt: bool = False) -> Resamples:
        """The resample weights: whole clusters when the pair has them (unless ``by_prompt``)."""
        if self.cluster_of is None or by_prompt:
            return resample_weights(self.contrib.data.shape[0], boot.resamples, boot.weight_seed)
        return cluster_weights(self.cluster_of, boot.resamples, boot.weight_seed)


def chance_corrected(value: FloatArray, chance: FloatArray) -> FloatArray:
    """``(value - chance) / (1 - chance)``; undefined (NaN) where chance is 1."""
    out: FloatArray = np.divide(
        value - chance, 1.0 - chance, out=np.full(np.shape(value), np.nan), where=chance < 1.0
    )
    return out


def _intervals(pair: PairData, weights: Resamples, confidence: float) -> list[FloatArray]:
    """(low, high) of every statistic and of its chance-corrected value, one weight matrix for
    all, so the intervals are coherent; chance is recomputed on each resample's prompts."""
    values = statistics(pair.contrib.weighted(weights))
    corrected = chance_corrected(values, statistics(pair.expected.weighted(weights)))
    return [*percentile_intervals(values, confidence), *percentile_intervals(corrected, confidence)]


def figures_of(
    pair: PairData, boot: BootstrapSpec, s: AgreementSettings
) -> tuple[AgreementFigure, ...]:
    total = pair.contrib.total()
    point, chance = statistics(total)[0], statistics(pair.expected.total())[0]
    corrected = chance_corrected(point, chance)
    clustered = pair.cluster_of is not None
    boot = boot.clustered(s.cluster_key if clustered else None)
    low, high, cc_low, cc_high = _intervals(pair, pair.weights(boot), boot.confidence)
    by_prompt = _intervals(pair, pair.weights(boot, by_prompt=True), boot.confidence)
    common = {**boot.params(), "chance_method": f"{pair.chance_method}; {CHANCE_READING}"}
    if pair.cluster_of is not None:
        common["n_clusters"] = int(pair.cluster_of.max()) + 1 if pair.cluster_of.size else 0
    return tuple(
        AgreementFigure(
            a=pair.a,
            b=pair.b,
            metric=stat.metric,
            value=float(point[i]),
            ci_low=float(low[i]),
            ci_high=float(high[i]),
            chance=float(chance[i]),
            n=int(total.column(stat.count_block, 1)[0]),
            params={**stat_params(stat, total, s.rbo), **common},
            chance_corrected=float(corrected[i]),
            cc_low=float(cc_low[i]),
            cc_high=float(cc_high[i]),
            prompt_ci=(float(by_prompt[0][i]), float(by_prompt[1][i])) if clustered else None,
        )
        for i, stat in enumerate(STATS)
    )


def _category_rows(
    a: AnnotatorRankings, b: AnnotatorRankings, prompts: Sequence[str]
) -> dict[str, IntArray]:
    """Shared-prompt row indices per category (a's category, else b's; none or "": skipped)."""
    lookup = category_clusters((b, a))
    groups: dict[str, list[int]] = {}
    for i, prompt in enumerate(prompts):
        if prompt in lookup:
            groups.setdefault(lookup[prompt], []).append(i)
    return {c: np.asarray(rows, dtype=np.int64) for c, rows in sorted(groups.items())}


CATEGORY_CLUSTERS = "prompt category"


def category_clusters(annotators: Sequence[AnnotatorRankings]) -> dict[str, str]:
    """Prompt -> category, from whichever annotator's rankings carry it: the clusters of a
    report that resamples categories."""
    out: dict[str, str] = {}
    for r in annotators:
        if r.categories is not None:
            out.update({p: c for p, c in zip(r.prompts, r.categories, strict=True) if c})
    return out


def cluster_index(prompts: Sequence[str], clusters: Clusters | None) -> IntArray | None:
    """Each prompt's cluster numbered 0..G-1; a prompt without one is a cluster of its own."""
    if clusters is None:
        return None
    keys = [clusters.get(p, f"\0prompt {p}") for p in prompts]
    index: IntArray = np.unique(np.asarray(keys, dtype=object), return_inverse=True)[1]
    return index.astype(np.int64)


def pair_data(
    a: AnnotatorRankings, b: AnnotatorRankings, s: AgreementSettings, clusters: Clusters | None
) -> tuple[tuple[str, ...], PairData]:
    """The shared prompts of A and B and their contributions; no shared prompt is an error."""
    prompts, ra, rb = align(a, b)
    if not prompts:
        raise InvalidInput(
            f"annotators {a.annotator!r} and {b.annotator!r} share no prompts: nothing to compare"
        )

    def contribute(x: IntArray, y: IntArray) -> Contributions:
        return prompt_contributions(x, y, s.rbo)

    expected, method = expected_contributions(ra, rb, contribute, ChanceSpec(seed=s.seed))
    pair = PairData(
        a.annotator,
        b.annotator,
        contribute(ra, rb),
        expected,
        method,
        cluster_index(prompts, clusters),
    )
    return prompts, pair


def agreement(
    a: AnnotatorRankings,
    b: AnnotatorRankings,
    settings: AgreementSettings,
    *,
    clusters: Clusters | None = None,
) -> AgreementResult:
    """Every agreement figure of A against B, with bootstrap intervals and chance baselines;
    ``clusters`` (prompt -> cluster) makes the intervals resample whole clusters."""
    prompts, pair = pair_data(a, b, settings, clusters)
    boot = settings.bootstrap
    by_category = {
        name: figures_of(pair.subset(rows), boot.within(name), settings)
        for name, rows in _category_rows(a, b, prompts).items()
    }
    overall = figures_of(pair, boot, settings)
    return AgreementResult(a.annotator, b.annotator, len(prompts), overall, by_category)


def pairwise_agreement(
    annotators: Sequence[AnnotatorRankings], settings: AgreementSettings
) -> list[AgreementResult]:
    """``agreement`` for every unordered pair of annotators, in input order."""
    return [agreement(x, y, settings) for x, y in combinations(annotators, 2)]
