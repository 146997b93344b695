"""Agreement between two annotators' harm rankings over the prompts both ranked.

Figures (A against B; every one also per prompt category when prompts carry one):

* ``rbo``: mean per-prompt RBO (``rbo.rbo``: variant ``ext`` by default, tie variant ``w`` by
  default, p explicit), once per list convention: ``harmful`` (only harmful models, most harmful
  first, possibly empty; empty lists follow ``rbo.EMPTY_CONVENTION``) and ``tied`` (all models,
  the N/A ones one tie group at the bottom).
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
contributions (``chance.py``). No shared prompts is an error (``InvalidInput``), not NaN figures:
an empty comparison is almost always a wrong pairing of annotators and should not pass silently.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import combinations
from typing import Literal

import numpy as np
import numpy.typing as npt

from harmrank.common.errors import InvalidInput
from harmrank.metrics.alpha import alpha_from_coincidence, coincidence_contributions
from harmrank.metrics.bootstrap import (
    BootstrapSpec,
    Contributions,
    percentile_intervals,
    resample_weights,
    stack_blocks,
)
from harmrank.metrics.chance import ChanceSpec, expected_contributions, unique_rows
from harmrank.metrics.rankings import AnnotatorRankings, ListConvention, align, to_rbo_list
from harmrank.metrics.rbo import EMPTY_CONVENTION, Ties, Variant, rbo, rbo_ext_batch

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Metric = Literal[
    "rbo",
    "exact_match",
    "kendall_tau_b",
    "krippendorff_alpha",
    "f1_harmful",
    "accuracy_harmful",
    "precision_harmful",
    "recall_harmful",
]
TAU_RULE = "undefined when either ranking is constant (e.g. all N/A): prompt excluded"


@dataclass(frozen=True)
class RBOSettings:
    p: float
    variant: Variant = "ext"
    ties: Ties = "w"


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
            if fig.metric == metric and fig.params.get("lists") == lists:
                return fig
        raise KeyError((metric, lists, category))


# ------------------------------------------------------------------------ per-prompt values


@lru_cache(maxsize=1 << 16)
def _rbo_pair(
    ra: tuple[int, ...], rb: tuple[int, ...], lists: ListConvention, s: RBOSettings
) -> float:
    # Only item identity matters to RBO, so positional labels let every pair of annotators (and
    # the chance enumeration) share one cache: 13 x 13 rankings for 3 models.
    labels = [str(j) for j in range(len(ra))]
    left, right = to_rbo_list(ra, labels, lists), to_rbo_list(rb, labels, lists)
    return rbo(left, right, p=s.p, variant=s.variant, ties=s.ties).rbo


def harmful_items(ranks: IntArray) -> IntArray:
    """Each row's harmful list as model indices, most harmful first, padded with -1."""
    order = np.argsort(-ranks, axis=1, kind="stable")
    harmful = np.take_along_axis(ranks, order, axis=1) > 0
    out: IntArray = np.where(harmful, order, -1)
    return out


def rbo_per_prompt(a: IntArray, b: IntArray, lists: ListConvention, s: RBOSettings) -> FloatArray:
    """RBO of each prompt's two rankings.

    Untied (``harmful``) lists under the default ``ext`` variant go through ``rbo_ext_batch``,
    vectorised; anything else makes one scalar ``rbo()`` call per distinct pair of rankings.
    """
    if lists == "harmful" and s.variant == "ext":  # ties do not matter on untied lists
        out: FloatArray = rbo_ext_batch(harmful_items(a), harmful_items(b), s.p)
        return out
    first, inverse = unique_rows(np.hstack([a, b]))
    pairs = zip(a[first].tolist(), b[first].tolist(), strict=True)
    values = [_rbo_pair(tuple(x), tuple(y), lists, s) for x, y in pairs]
    return np.asarray(values, dtype=np.float64)[inverse]


def kendall_tau_b(a: IntArray, b: IntArray) -> FloatArray:
    """Tau-b per prompt (row) over the models' ranks; NaN where either row is constant."""
    i, j = np.triu_indices(a.shape[1], k=1)
    da, db = np.sign(a[:, i] - a[:, j]), np.sign(b[:, i] - b[:, j])
    # (concordant - discordant) / sqrt(pairs untied in a * pairs untied in b)
    untied = np.count_nonzero(da, axis=1) * np.count_nonzero(db, axis=1)
    return _ratio((da * db).sum(axis=1).astype(np.float64), np.sqrt(untied.astype(np.float64)))


def confusion_counts(a: IntArray, b: IntArray) -> FloatArray:
    """Per prompt (tp, fp, fn, tn) of A's harmful calls against reference B."""
    ha, hb = a > 0, b > 0
    cells = [ha & hb, ha & ~hb, ~ha & hb, ~ha & ~hb]
    return np.column_stack([c.sum(axis=1) for c in cells]).astype(np.float64)


def empty_harmful_lists(a: IntArray, b: IntArray) -> FloatArray:
    """Per prompt (both harmful lists empty, exactly one empty): RBO's convention cases."""
    empty_a, empty_b = ~(a > 0).any(axis=1), ~(b > 0).any(axis=1)
    return np.column_stack([empty_a & empty_b, empty_a ^ empty_b]).astype(np.float64)


def _valued(values: FloatArray) -> FloatArray:
    """(value, 1) where defined, (0, 0) where NaN: summed, a mean over the defined prompts."""
    defined = np.isfinite(values)
    return np.column_stack([np.where(defined, values, 0.0), defined.astype(np.float64)])


def prompt_contributions(a: IntArray, b: IntArray, s: RBOSettings) -> Contributions:
    """Every figure's additive per-prompt contributions, in named column blocks."""
    exact = (a == b).all(axis=1).astype(np.float64)
    return stack_blocks(
        [
            ("rbo_harmful", _valued(rbo_per_prompt(a, b, "harmful", s))),
            ("rbo_tied", _valued(rbo_per_prompt(a, b, "tied", s))),
            ("exact", np.column_stack([exact, np.ones_like(exact)])),
            ("tau", _valued(kendall_tau_b(a, b))),
            ("coincidence", coincidence_contributions(a, b)),
            ("confusion", confusion_counts(a, b)),
            ("empty", empty_harmful_lists(a, b)),
        ]
    )


# ------------------------------------------------------------------------ statistics of totals


def _ratio(num: FloatArray, den: FloatArray) -> FloatArray:
    out: FloatArray = np.divide(num, den, out=np.full(num.shape, np.nan), where=den > 0)
    return out


def _mean_of(block: str) -> Callable[[Contributions], FloatArray]:
    return lambda c: _ratio(c.column(block, 0), c.column(block, 1))


def _confusion_ratio(num: list[int], den: list[int]) -> Callable[[Contributions], FloatArray]:
    """Sum of confusion cells ``num`` over the sum of cells ``den`` (cells: tp, fp, fn, tn)."""

    def ratio(c: Contributions) -> FloatArray:
        cells = c["confusion"]
        return _ratio(cells[:, num].sum(axis=1), cells[:, den].sum(axis=1))

    return ratio


def _f1(c: Contributions) -> FloatArray:
    tp, fp, fn = (c.column("confusion", j) for j in range(3))
    return _ratio(2.0 * tp, 2.0 * tp + fp + fn)


@dataclass(frozen=True)
class _Stat:
    metric: Metric
    lists: ListConvention | None
    value: Callable[[Contributions], FloatArray]
    count_block: str  # column 1 of this block counts the prompts the figure is computed over


STATS = (
    _Stat("rbo", "harmful", _mean_of("rbo_harmful"), "rbo_harmful"),
    _Stat("rbo", "tied", _mean_of("rbo_tied"), "rbo_tied"),
    _Stat("exact_match", None, _mean_of("exact"), "exact"),
    _Stat("kendall_tau_b", None, _mean_of("tau"), "tau"),
    _Stat("krippendorff_alpha", None, lambda c: alpha_from_coincidence(c["coincidence"]), "exact"),
    _Stat("accuracy_harmful", None, _confusion_ratio([0, 3], [0, 1, 2, 3]), "exact"),
    _Stat("precision_harmful", None, _confusion_ratio([0], [0, 1]), "exact"),
    _Stat("recall_harmful", None, _confusion_ratio([0], [0, 2]), "exact"),
    _Stat("f1_harmful", None, _f1, "exact"),
)


def statistics(contrib: Contributions) -> FloatArray:
    """Every figure (columns, in ``STATS`` order) for each row of summed contributions."""
    out: FloatArray = np.column_stack([stat.value(contrib) for stat in STATS])
    return out


# ------------------------------------------------------------------------ figure parameters


def _prompts_without(total: Contributions, block: str) -> int:
    return int(total.column("exact", 1)[0] - total.column(block, 1)[0])


def _rbo_params(stat: _Stat, total: Contributions, s: RBOSettings) -> dict[str, object]:
    params: dict[str, object] = {"p": s.p, "variant": s.variant, "ties": s.ties}
    params |= {"lists": stat.lists, "empty_convention": EMPTY_CONVENTION}
    params["n_undefined"] = _prompts_without(total, stat.count_block)
    if stat.lists == "harmful":  # empty lists score by convention: say how many there were
        both, one = (int(total.column("empty", j)[0]) for j in (0, 1))
        params |= {"n_both_empty": both, "n_one_empty": one}
    return params


def _tau_params(stat: _Stat, total: Contributions, s: RBOSettings) -> dict[str, object]:
    undefined = _prompts_without(total, "tau")
    return {"variant": "b", "n_undefined": undefined, "undefined_rule": TAU_RULE}


def _alpha_params(stat: _Stat, total: Contributions, s: RBOSettings) -> dict[str, object]:
    units = int(total["coincidence"].sum() / 2)  # each unit adds two pairable values
    return {
        "level": "ordinal",
        "distance": "Krippendorff 2011",
        "units": "(prompt, model)",
        "n_units": units,
        "coders": 2,
        "values": "rank 0..k",
    }


def _exact_params(stat: _Stat, total: Contributions, s: RBOSettings) -> dict[str, object]:
    return {"definition": "identical ranking (every model's rank equal)"}


def _harmful_params(stat: _Stat, total: Contributions, s: RBOSettings) -> dict[str, object]:
    tp, fp, fn, tn = (int(x) for x in total["confusion"][0])
    return {
        "positive": "harmful (rank > 0)",
        "reference": "b",
        "averaging": "micro over cells",
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
    }


PARAMS: dict[str, Callable[[_Stat, Contributions, RBOSettings], dict[str, object]]] = {
    "rbo": _rbo_params,
    "kendall_tau_b": _tau_params,
    "krippendorff_alpha": _alpha_params,
    "exact_match": _exact_params,
}


def _stat_params(stat: _Stat, total: Contributions, s: RBOSettings) -> dict[str, object]:
    return PARAMS.get(stat.metric, _harmful_params)(stat, total, s)


# ------------------------------------------------------------------------ assembly


CHANCE_READING = "figure of the summed expected contributions (= its exact expectation, chance.py)"


@dataclass(frozen=True)
class _Pair:
    """One pair's per-prompt contributions, observed and expected under the chance null."""

    a: str
    b: str
    contrib: Contributions
    expected: Contributions
    chance_method: str

    def subset(self, rows: IntArray) -> _Pair:
        contrib, expected = self.contrib.take(rows), self.expected.take(rows)
        return _Pair(self.a, self.b, contrib, expected, self.chance_method)


def _figures(pair: _Pair, boot: BootstrapSpec, s: RBOSettings) -> tuple[AgreementFigure, ...]:
    total = pair.contrib.total()
    point, chance = statistics(total)[0], statistics(pair.expected.total())[0]
    # One weight matrix for every statistic of the pair, so the intervals are coherent.
    weights = resample_weights(pair.contrib.data.shape[0], boot.resamples, boot.weight_seed)
    low, high = percentile_intervals(statistics(pair.contrib.weighted(weights)), boot.confidence)
    common = {**boot.params(), "chance_method": f"{pair.chance_method}; {CHANCE_READING}"}
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
            params={**_stat_params(stat, total, s), **common},
        )
        for i, stat in enumerate(STATS)
    )


def _category_rows(
    a: AnnotatorRankings, b: AnnotatorRankings, prompts: Sequence[str]
) -> dict[str, IntArray]:
    """Shared-prompt row indices per category (a's category, else b's; none or "": skipped)."""
    lookup: dict[str, str] = {}
    for r in (b, a):
        if r.categories is not None:
            lookup.update({p: c for p, c in zip(r.prompts, r.categories, strict=True) if c})
    groups: dict[str, list[int]] = {}
    for i, prompt in enumerate(prompts):
        if prompt in lookup:
            groups.setdefault(lookup[prompt], []).append(i)
    return {c: np.asarray(rows, dtype=np.int64) for c, rows in sorted(groups.items())}


def _pair(names: tuple[str, str], ra: IntArray, rb: IntArray, s: RBOSettings, seed: int) -> _Pair:
    def contribute(x: IntArray, y: IntArray) -> Contributions:
        return prompt_contributions(x, y, s)

    expected, method = expected_contributions(ra, rb, contribute, ChanceSpec(seed=seed))
    return _Pair(names[0], names[1], contribute(ra, rb), expected, method)


def agreement(
    a: AnnotatorRankings,
    b: AnnotatorRankings,
    *,
    p: float,
    resamples: int,
    seed: int,
    confidence: float = 0.95,
    rbo_variant: Variant = "ext",
    rbo_ties: Ties = "w",
) -> AgreementResult:
    """Every agreement figure of A against B, with bootstrap intervals and chance baselines."""
    prompts, ra, rb = align(a, b)
    if not prompts:
        raise InvalidInput(
            f"annotators {a.annotator!r} and {b.annotator!r} share no prompts: nothing to compare"
        )
    settings = RBOSettings(p, rbo_variant, rbo_ties)
    boot = BootstrapSpec(resamples, seed, confidence)
    pair = _pair((a.annotator, b.annotator), ra, rb, settings, seed)
    by_category = {
        name: _figures(pair.subset(rows), boot.within(name), settings)
        for name, rows in _category_rows(a, b, prompts).items()
    }
    return AgreementResult(
        a.annotator, b.annotator, len(prompts), _figures(pair, boot, settings), by_category
    )


def pairwise_agreement(
    annotators: Sequence[AnnotatorRankings],
    *,
    p: float,
    resamples: int,
    seed: int,
    confidence: float = 0.95,
    rbo_variant: Variant = "ext",
    rbo_ties: Ties = "w",
) -> list[AgreementResult]:
    """``agreement`` for every unordered pair of annotators, in input order."""
    return [
        agreement(
            x,
            y,
            p=p,
            resamples=resamples,
            seed=seed,
            confidence=confidence,
            rbo_variant=rbo_variant,
            rbo_ties=rbo_ties,
        )
        for x, y in combinations(annotators, 2)
    ]
