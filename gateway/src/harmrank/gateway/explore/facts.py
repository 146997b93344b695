"""What the explorer knows of each prompt, and the filters over it: pure code, no database.

A *column* is one annotator's rankings in one presentation order: a human or an aggregate has
one column named after it; a judge asked in several orders has one per order (``gpt4o #1``,
``gpt4o #2``), so a position effect is two of its columns disagreeing. Ranks follow the study's
convention (0 = not harmful, the highest number the most harmful), in canonical model order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import combinations
from typing import Literal

from harmrank.gateway.db.models import AnnotatorKind
from harmrank.metrics.rankings import ListConvention, to_rbo_list
from harmrank.metrics.rbo import rbo

Agreement = Literal["exact", "differ", "harm_split", "rbo_below"]
Split = Literal["judges", "humans"]
Sort = Literal["order", "disagreement"]
HUMAN_KINDS = frozenset({AnnotatorKind.HUMAN.value})


@dataclass(frozen=True)
class Column:
    name: str
    annotator: str
    kind: str


@dataclass
class PromptFacts:
    """One prompt of the scope: its place, text for search, and every column's ranks."""

    id: int
    external_id: str
    position: int
    category: str | None
    search_text: str
    models: frozenset[str]
    ranks: dict[str, tuple[int, ...]] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)
    judges: dict[str, list[str]] = field(default_factory=dict)
    """Per judge annotator, its columns on this prompt (one per presentation order)."""
    derived: set[str] = field(default_factory=set)
    """Columns made from others (a judge's consensus over its orders): never counted twice."""
    disagreement: float | None = None
    """Kept once computed: the facts are rebuilt whenever the scope's rankings change."""


@dataclass(frozen=True)
class Filter:
    category: str | None = None
    model: str | None = None
    q: str | None = None
    a: str | None = None
    b: str | None = None
    agreement: Agreement | None = None
    rbo_below: float = 0.5
    p: float = 0.9
    lists: ListConvention = "tied"
    split: Split | None = None
    position_effect: bool = False
    judge: str | None = None
    rank: int | None = None
    beats: str | None = None
    sort: Sort = "order"


def harmful(ranks: Sequence[int]) -> tuple[bool, ...]:
    return tuple(r != 0 for r in ranks)


@lru_cache(maxsize=4096)  # few distinct rankings of a few models: most pairs repeat
def rbo_of(
    x: tuple[int, ...], y: tuple[int, ...], models: tuple[str, ...], p: float, lists: ListConvention
) -> float:
    """RBO_ext, ties handled as w: the report's defaults, with either of its list conventions,
    so an agreement cell's figure and the samples behind it use one measure."""
    left, right = to_rbo_list(x, models, lists), to_rbo_list(y, models, lists)
    return rbo(left, right, p=p, variant="ext", ties="w").rbo


def pair_agrees(
    x: Sequence[int], y: Sequence[int], rule: Agreement, flt: Filter, models: Sequence[str]
) -> bool:
    """Whether the two rankings satisfy the agreement rule (on ``flt.model`` alone when set)."""
    if flt.model is not None and rule != "rbo_below":
        i = list(models).index(flt.model)
        x, y = (x[i],), (y[i],)
    if rule == "exact":
        return tuple(x) == tuple(y)
    if rule == "differ":
        return tuple(x) != tuple(y)
    if rule == "harm_split":
        return harmful(x) != harmful(y)
    return rbo_of(tuple(x), tuple(y), tuple(models), flt.p, flt.lists) < flt.rbo_below


def split_among(facts: PromptFacts, split: Split) -> bool:
    """Whether the judges (or the humans) gave this prompt more than one distinct ranking."""
    kinds = {AnnotatorKind.JUDGE.value} if split == "judges" else HUMAN_KINDS
    wanted = {c for c, k in facts.kinds.items() if k in kinds and c not in facts.derived}
    return len({facts.ranks[c] for c in wanted}) > 1


def position_effect(facts: PromptFacts, judge: str | None) -> bool:
    """Whether a judge (the named one, or any) ranked this prompt differently across orders."""
    judges = [judge] if judge is not None else list(facts.judges)
    for name in judges:
        columns = facts.judges.get(name, [])
        if len({facts.ranks[c] for c in columns}) > 1:
            return True
    return False


def disagreement(facts: PromptFacts) -> float:
    """The share of column pairs that do not rank the prompt identically (0 with < 2 columns)."""
    if facts.disagreement is None:
        facts.disagreement = _disagreement(facts)
    return facts.disagreement


def _disagreement(facts: PromptFacts) -> float:
    own = [r for c, r in facts.ranks.items() if c not in facts.derived]
    pairs = list(combinations(own, 2))
    if not pairs:
        return 0.0
    return sum(x != y for x, y in pairs) / len(pairs)


def matches(facts: PromptFacts, flt: Filter, models: Sequence[str]) -> bool:
    if flt.category is not None and facts.category != flt.category:
        return False
    if flt.model is not None and flt.model not in facts.models:
        return False
    if flt.q and flt.q.casefold() not in facts.search_text:
        return False
    if flt.agreement is not None and not _pair_matches(facts, flt, models):
        return False
    if flt.split is not None and not split_among(facts, flt.split):
        return False
    if flt.rank is not None or flt.beats is not None:
        return _ranked_as(facts, flt, models)
    return not flt.position_effect or position_effect(facts, flt.judge)


def _ranked_as(facts: PromptFacts, flt: Filter, models: Sequence[str]) -> bool:
    """Annotator ``a`` gave ``model`` rank ``rank`` (a rank-histogram bar), and/or ranked it
    less harmful than ``beats`` (a win: lower rank wins, N/A = 0 least harmful; a tie is no
    win) -- the prompts behind a report's bars."""
    ranks = facts.ranks.get(flt.a or "")
    if ranks is None or flt.model is None:
        return False
    mine = ranks[list(models).index(flt.model)]
    if flt.rank is not None and mine != flt.rank:
        return False
    if flt.beats is not None and not mine < ranks[list(models).index(flt.beats)]:
        return False
    return not flt.position_effect or position_effect(facts, flt.judge)


def _pair_matches(facts: PromptFacts, flt: Filter, models: Sequence[str]) -> bool:
    # A prompt one of the two did not rank has nothing to compare: it never matches.
    if flt.a is None or flt.b is None or flt.agreement is None:
        return False
    x, y = facts.ranks.get(flt.a), facts.ranks.get(flt.b)
    if x is None or y is None:
        return False
    return pair_agrees(x, y, flt.agreement, flt, models)


def select(facts: Sequence[PromptFacts], flt: Filter, models: Sequence[str]) -> list[PromptFacts]:
    """The prompts the filter keeps, in the sample's order or most disagreement first."""
    return sorted((f for f in facts if matches(f, flt, models)), key=sort_key(flt.sort))


def sort_key(sort: Sort) -> Callable[[PromptFacts], tuple[float, ...]]:
    """A prompt's place in the listing, ascending; the prompt's id last makes it a total order,
    so a page's cursor (the last key shown) says exactly where the next page starts."""
    if sort == "disagreement":
        return lambda f: (-disagreement(f), f.position, f.id)
    return lambda f: (f.position, f.id)


def disagreeing_columns(ranks: dict[str, tuple[int, ...]]) -> dict[str, list[int]]:
    """Per column, the model positions where it differs from the most common rank there."""
    out: dict[str, list[int]] = {c: [] for c in ranks}
    if len(ranks) < 2:
        return out
    width = len(next(iter(ranks.values())))
    for i in range(width):
        values = [r[i] for r in ranks.values()]
        common = max(set(values), key=lambda v: (values.count(v), -v))
        for column, r in ranks.items():
            if r[i] != common:
                out[column].append(i)
    return out
