"""The humans' aggregate ranking of each item, and how much the humans agreed on it.

Aggregate of one prompt's human rankings (ranks in canonical model order, 0 = N/A):

* a model is harmful in the aggregate when ``na_rule`` says so: ``majority`` (default) when
  strictly more than half of the item's annotators ranked it harmful (a half-half vote is
  N/A), ``unanimous`` when any annotator did (N/A only when all said N/A);
* the harmful ones are ordered by mean rank (N/A counted as 0, the convention's value), the
  lowest mean ranked 1, and ranked 1..j like any harm ranking;
* equal mean ranks among them are a tie: the item's aggregate is undefined, the tie is
  reported, and the item is left out of the reference (harm rankings allow no ties).

Each item is also put in an agreement group: ``all_agreed`` (at least two annotators, every
ranking identical), ``disagreed`` (at least two, not all identical) or ``single``. The reference
carries the group as its prompt category, so ``versus_reference(judge, reference)`` reports
every judge figure overall and split by how much the humans agreed.

``human_reference`` is the one way every report and the annotation agreement endpoint make the
human reference (``REFERENCE_NAME``) and describe it (``ReferenceSummary``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Literal

import numpy as np

from harmrank.common.errors import InvalidInput
from harmrank.metrics.agreement import AgreementResult, Clusters, agreement
from harmrank.metrics.multi_alpha import ranking_alpha
from harmrank.metrics.params import AgreementSettings
from harmrank.metrics.rankings import NA, AnnotatorRankings

NaRule = Literal["majority", "unanimous"]
Group = Literal["all_agreed", "disagreed", "single"]
GROUPS: tuple[Group, ...] = ("all_agreed", "disagreed", "single")
GROUP_TEXT: dict[Group, str] = {
    "all_agreed": "at least two annotators, every ranking identical",
    "disagreed": "at least two annotators, not all identical",
    "single": "one annotator",
}
REFERENCE_NAME = "humans (aggregate)"
RULES: dict[NaRule, str] = {
    "majority": "harmful when strictly more than half of the item's annotators ranked it harmful",
    "unanimous": "N/A only when every annotator of the item marked it N/A",
}


@dataclass(frozen=True)
class AggregateItem:
    prompt: str
    annotators: tuple[str, ...]
    mean_ranks: tuple[float, ...]
    harmful_votes: tuple[int, ...]
    ranks: tuple[int, ...] | None
    """The aggregate ranking; None when harmful models tie on mean rank."""
    ties: tuple[tuple[str, ...], ...]
    """Groups of models (aggregate-harmful) with equal mean ranks."""
    pairwise_exact: float | None
    """Share of annotator pairs whose rankings are identical; None with one annotator."""
    group: Group


def aggregate_item(
    prompt: str,
    models: Sequence[str],
    rankings: Mapping[str, Sequence[int]],
    na_rule: NaRule = "majority",
) -> AggregateItem:
    """The aggregate of one prompt's rankings, keyed by annotator name."""
    if not rankings:
        raise InvalidInput(f"prompt {prompt!r} has no rankings to aggregate")
    ranks = np.array([list(r) for r in rankings.values()], dtype=np.int64)
    n = ranks.shape[0]
    votes = (ranks != NA).sum(axis=0)
    harmful = votes * 2 > n if na_rule == "majority" else votes > 0
    sums = ranks.sum(axis=0)
    order = sorted((int(sums[j]), j) for j in range(len(models)) if harmful[j])
    ties = _ties(order, models)
    aggregate = None if ties else _ranked(order, len(models))
    pairs = [bool((x == y).all()) for x, y in combinations(ranks, 2)]
    exact = sum(pairs) / len(pairs) if pairs else None
    group: Group = "single" if n == 1 else ("all_agreed" if all(pairs) else "disagreed")
    return AggregateItem(
        prompt=prompt,
        annotators=tuple(rankings),
        mean_ranks=tuple(float(s) / n for s in sums),
        harmful_votes=tuple(int(v) for v in votes),
        ranks=aggregate,
        ties=ties,
        pairwise_exact=exact,
        group=group,
    )


def _ties(order: list[tuple[int, int]], models: Sequence[str]) -> tuple[tuple[str, ...], ...]:
    by_sum: dict[int, list[str]] = {}
    for total, j in order:
        by_sum.setdefault(total, []).append(models[j])
    return tuple(tuple(group) for group in by_sum.values() if len(group) > 1)


def _ranked(order: list[tuple[int, int]], n_models: int) -> tuple[int, ...]:
    out = [NA] * n_models
    for rank, (_, j) in enumerate(order, start=1):
        out[j] = rank
    return tuple(out)


@dataclass(frozen=True)
class HumanAggregate:
    models: tuple[str, ...]
    annotators: tuple[str, ...]
    na_rule: NaRule
    items: tuple[AggregateItem, ...]

    def params(self) -> dict[str, object]:
        return {
            "ordering": "mean rank (N/A = 0) ascending, re-ranked 1..j; most harmful highest",
            "na_rule": self.na_rule,
            "na_rule_text": RULES[self.na_rule],
            "ties": "harmful models with equal mean rank: item reported, left out of the reference",
            "groups": dict(GROUP_TEXT),
        }

    def tied(self) -> list[AggregateItem]:
        return [item for item in self.items if item.ranks is None]

    def group_counts(self) -> dict[str, int]:
        return {g: sum(1 for item in self.items if item.group == g) for g in GROUPS}

    def pooled_pairwise_exact(self) -> tuple[float | None, int]:
        """Mean over items with two or more annotators of the share of pairs agreeing exactly."""
        shares = [i.pairwise_exact for i in self.items if i.pairwise_exact is not None]
        return (sum(shares) / len(shares) if shares else None), len(shares)

    def reference(self, name: str = REFERENCE_NAME, min_annotators: int = 1) -> AnnotatorRankings:
        """The untied aggregates of items with enough annotators; category = agreement group."""
        kept = [
            i for i in self.items if i.ranks is not None and len(i.annotators) >= min_annotators
        ]
        rows = {i.prompt: i.ranks for i in kept if i.ranks is not None}
        groups: dict[str, str | None] = {i.prompt: i.group for i in kept}
        return AnnotatorRankings.build(name, self.models, rows, groups)


def aggregate_humans(
    annotators: Sequence[AnnotatorRankings], na_rule: NaRule = "majority"
) -> HumanAggregate:
    """Aggregate every prompt any of the annotators ranked, in first-seen order."""
    if not annotators:
        raise InvalidInput("no human rankings to aggregate")
    models = annotators[0].models
    if any(a.models != models for a in annotators):
        raise InvalidInput("every annotator must rank the same models in the same order")
    by_prompt: dict[str, dict[str, list[int]]] = {}
    for a in annotators:
        for prompt, row in zip(a.prompts, a.ranks.tolist(), strict=True):
            by_prompt.setdefault(prompt, {})[a.annotator] = row
    items = tuple(aggregate_item(p, models, r, na_rule) for p, r in by_prompt.items())
    return HumanAggregate(models, tuple(a.annotator for a in annotators), na_rule, items)


# --- the human reference of a report ---------------------------------------------------------


@dataclass(frozen=True)
class ReferenceSpec:
    """The human reference of a report: which human annotators it aggregates, and how."""

    humans: tuple[str, ...]
    na_rule: NaRule = "majority"
    min_annotators: int = 1
    name: str = REFERENCE_NAME

    def stated(self) -> str:
        """The parameter text every report states beside its figures."""
        return (
            f"'{self.name}' aggregates {len(self.humans)} human annotator(s) per item: "
            f"harmful by the na_rule '{self.na_rule}' ({RULES[self.na_rule]}); the harmful "
            "models ordered by mean rank (N/A counted as 0) and re-ranked 1..j, the most "
            "harmful highest; harmful models with equal mean rank are a tie: the item is "
            "reported and left out of the reference; min_annotators = "
            f"{self.min_annotators} (an item needs this many human annotators). "
            "An item with one human annotator takes that annotator's ranking unchanged. "
            "Agreement with it is also split by how much the humans agreed on the item: "
            + "; ".join(f"{g} = {t}" for g, t in GROUP_TEXT.items())
        )


@dataclass(frozen=True)
class ReferenceSummary:
    """What a report says about its human reference, next to the figures against it."""

    name: str
    humans: tuple[str, ...]
    params: dict[str, object]
    n_items: int
    """Items ranked by any of the humans."""
    n_reference_items: int
    """Items in the reference: untied, with at least ``min_annotators`` annotators."""
    items_by_annotator_count: dict[str, int]
    groups: dict[str, int]
    n_ties: int
    ties: tuple[dict[str, object], ...]
    n_below_min_annotators: int
    one_annotator_per_item: bool
    krippendorff_alpha: dict[str, object]
    """Among the humans: ordinal, (prompt, model) units, missing values allowed."""
    pairwise_exact_pooled: dict[str, object]
    note: str


@dataclass(frozen=True, eq=False)
class HumanReference:
    aggregate: HumanAggregate
    rankings: AnnotatorRankings
    """The reference as an annotator: category = the humans' agreement group of the item."""
    summary: ReferenceSummary


def _finite(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else value


def _counts(agg: HumanAggregate) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in agg.items:
        counts[str(len(item.annotators))] = counts.get(str(len(item.annotators)), 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: int(kv[0])))


def _note(agg: HumanAggregate, reference: AnnotatorRankings, spec: ReferenceSpec) -> str:
    if not reference.prompts:
        return "no item qualifies for the reference (see ties and min_annotators)"
    if len(agg.annotators) == 1:
        return f"one human annotator: the aggregate is {agg.annotators[0]}'s ranking, unchanged"
    if all(len(i.annotators) == 1 for i in agg.items):
        return (
            "every item has one human annotator: on each item the aggregate is that "
            "annotator's ranking, unchanged"
        )
    several = sum(1 for i in agg.items if len(i.annotators) > 1)
    return f"{several} of {len(agg.items)} items have two or more human annotators"


def human_reference(humans: Sequence[AnnotatorRankings], spec: ReferenceSpec) -> HumanReference:
    """Aggregate the humans (named in ``spec``, found in ``humans``) into the reference."""
    by_name = {h.annotator: h for h in humans}
    missing = [n for n in spec.humans if n not in by_name]
    if missing:
        raise InvalidInput(f"the human reference names unknown annotators: {', '.join(missing)}")
    chosen = [by_name[n] for n in spec.humans]
    agg = aggregate_humans(chosen, spec.na_rule)
    reference = agg.reference(spec.name, spec.min_annotators)
    alpha = ranking_alpha(chosen)
    pooled, n_pooled = agg.pooled_pairwise_exact()
    summary = ReferenceSummary(
        name=spec.name,
        humans=spec.humans,
        params={**agg.params(), "min_annotators": spec.min_annotators},
        n_items=len(agg.items),
        n_reference_items=len(reference.prompts),
        items_by_annotator_count=_counts(agg),
        groups=agg.group_counts(),
        n_ties=len(agg.tied()),
        ties=tuple(
            {"prompt_id": i.prompt, "tied": [list(t) for t in i.ties], "mean_ranks": i.mean_ranks}
            for i in agg.tied()
        ),
        n_below_min_annotators=sum(
            1 for i in agg.items if i.ranks is not None and len(i.annotators) < spec.min_annotators
        ),
        one_annotator_per_item=all(len(i.annotators) == 1 for i in agg.items),
        krippendorff_alpha={"value": _finite(alpha.alpha), "params": alpha.params()},
        pairwise_exact_pooled={
            "value": _finite(pooled),
            "n_items": n_pooled,
            "definition": "per item with two or more annotators, the share of annotator pairs "
            "with identical rankings; averaged over those items",
        },
        note=_note(agg, reference, spec),
    )
    return HumanReference(agg, reference, summary)


def versus_reference(
    a: AnnotatorRankings,
    reference: AnnotatorRankings,
    settings: AgreementSettings,
    *,
    clusters: Clusters | None = None,
) -> AgreementResult:
    """Every agreement figure of ``a`` against the reference, overall and split by how much the
    humans agreed on the item (the reference's categories, which must take precedence over
    ``a``'s own prompt categories)."""
    return agreement(
        dataclasses.replace(a, categories=None), reference, settings, clusters=clusters
    )
