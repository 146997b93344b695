"""The explorer's logic: the scope's facts, the filtered page with counts, one prompt in full."""

from __future__ import annotations

from bisect import bisect_right
from collections import OrderedDict, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from harmrank.common.contracts.judging import consensus
from harmrank.common.errors import BadRequest
from harmrank.gateway.db.models import AnnotatorKind
from harmrank.gateway.explore import facts as f
from harmrank.gateway.explore import repository as repo
from harmrank.gateway.explore.schemas import (
    ColumnOut,
    ExploreItem,
    ExplorePage,
    ListedPrompt,
    MissingJudgment,
    ShownRanking,
    ShownResponse,
)
from harmrank.gateway.listings import resolve
from harmrank.gateway.listings.scope import ResultScope
from harmrank.gateway.pagination import KeyPart, decode_key, keyset_page

PREVIEW_CHARS = 240


async def scope_of(session: AsyncSession, dataset: str | None, run: int | None) -> ResultScope:
    """Exactly one of a dataset name and a run id says what to explore."""
    if (dataset is None) == (run is None):
        raise BadRequest("give exactly one of `dataset` (a dataset name) and `run` (a run id)")
    if run is not None:
        return await resolve.run_scope(session, run)
    assert dataset is not None
    return await resolve.dataset_scope(session, dataset)


@dataclass(frozen=True)
class Explored:
    """Everything the listing needs about a scope."""

    models: list[str]
    columns: list[f.Column]
    facts: list[f.PromptFacts]
    texts: dict[int, str]


def column_names(rows: Sequence[repo.RankingRow]) -> list[str]:
    """Each ranking's column: its annotator, numbered by order when a judge gave several."""
    per_prompt: dict[tuple[int, str], list[int]] = defaultdict(list)
    for index, row in enumerate(rows):
        per_prompt[(row.prompt_id, row.annotator)].append(index)
    several = {a for (_, a), indexes in per_prompt.items() if len(indexes) > 1}
    names = [row.annotator for row in rows]
    for (_, annotator), indexes in per_prompt.items():
        if annotator not in several:
            continue
        for n, index in enumerate(sorted(indexes, key=lambda i: _order_key(rows[i])), 1):
            names[index] = f"{annotator} #{n}"
    return names


def _order_key(row: repo.RankingRow) -> tuple[int, str]:
    repetition = (row.presentation or {}).get("repetition")
    return (repetition if isinstance(repetition, int) else 0, row.presentation_key)


# The listing's facts of the scopes asked for last, by database and scope, each with the
# fingerprint it was built at: a page then costs the fingerprint's aggregate queries and the
# filter in memory, not loading every ranking of the scope again. Any change rebuilds it.
_CACHE: OrderedDict[tuple[str, int, int | None], tuple[tuple[Any, ...], Explored]] = OrderedDict()
CACHED_SCOPES = 8


async def explore(session: AsyncSession, scope: ResultScope) -> Explored:
    """The scope's facts, from the cache while its fingerprint is unchanged."""
    key = (str(session.get_bind().engine.url), scope.dataset_id, scope.run_id)
    mark = await repo.fingerprint(session, scope)
    cached = _CACHE.get(key)
    if cached is not None and cached[0] == mark:
        _CACHE.move_to_end(key)
        return cached[1]
    explored = await load(session, scope)
    _CACHE[key] = (mark, explored)
    while len(_CACHE) > CACHED_SCOPES:
        _CACHE.popitem(last=False)
    return explored


async def load(session: AsyncSession, scope: ResultScope) -> Explored:
    prompt_rows = await repo.prompts(session, scope)
    models = await repo.models(session, scope)
    by_id = {
        p.id: f.PromptFacts(
            p.id, p.external_id, p.position, p.category, p.text.casefold(), frozenset(models)
        )
        for p in prompt_rows
    }
    rows = await repo.rankings(session, scope)
    columns: dict[str, f.Column] = {}
    for row, name in zip(rows, column_names(rows), strict=True):
        facts = by_id.get(row.prompt_id)
        if facts is None or len(row.ranks) != len(models):
            continue  # ranked against another model set: not comparable here
        columns.setdefault(name, f.Column(name, row.annotator, row.kind))
        facts.ranks[name] = tuple(row.ranks)
        facts.kinds[name] = row.kind
        if row.kind == AnnotatorKind.JUDGE.value:
            facts.judges.setdefault(row.annotator, []).append(name)
    for facts in by_id.values():
        _add_consensus(facts, columns)
    ordered = sorted(columns.values(), key=lambda c: (_kind_order(c.kind), c.name))
    texts = {p.id: p.text for p in prompt_rows}
    return Explored(models, ordered, list(by_id.values()), texts)


def _add_consensus(facts: f.PromptFacts, columns: dict[str, f.Column]) -> None:
    """A judge asked in several orders also gets a column under its own name: the consensus
    of its orders by the rule a run's report uses, so a report's figure for that judge and
    the explorer's filter on it look at the same ranking."""
    for judge, names in facts.judges.items():
        if len(names) > 1:
            facts.ranks[judge] = tuple(consensus([list(facts.ranks[n]) for n in sorted(names)]))
            facts.kinds[judge] = AnnotatorKind.JUDGE.value
            facts.derived.add(judge)
            columns.setdefault(judge, f.Column(judge, judge, AnnotatorKind.JUDGE.value))


def _kind_order(kind: str) -> int:
    order = ["human", "expert", "aggregate", "judge"]
    return order.index(kind) if kind in order else len(order)


def check_filter(explored: Explored, flt: f.Filter) -> None:
    """Names the filter uses must exist in the scope: a typo must not look like 'no prompts'."""
    names = {c.name for c in explored.columns}
    for field, value in (("a", flt.a), ("b", flt.b)):
        if value is not None and value not in names:
            raise BadRequest(f"{field}: no annotator column {value!r}; known: {sorted(names)}")
    for field, value in (("model", flt.model), ("beats", flt.beats)):
        if value is not None and value not in explored.models:
            raise BadRequest(f"{field}: no model {value!r}; known: {explored.models}")
    if (flt.rank is not None or flt.beats is not None) and (flt.a is None or flt.model is None):
        raise BadRequest("rank, beats: need the annotator column `a` and the `model`")
    if flt.agreement is not None and (flt.a is None or flt.b is None):
        raise BadRequest("agreement: needs both annotator columns `a` and `b`")
    judges = {c.annotator for c in explored.columns if c.kind == AnnotatorKind.JUDGE.value}
    if flt.judge is not None and flt.judge not in judges:
        raise BadRequest(f"judge: no judge {flt.judge!r}; known: {sorted(judges)}")


async def selected(
    session: AsyncSession, scope: ResultScope, flt: f.Filter
) -> tuple[Explored, list[f.PromptFacts]]:
    explored = await explore(session, scope)
    check_filter(explored, flt)
    return explored, f.select(explored.facts, flt, explored.models)


# Each order has its own cursor tag, so a cursor of one order is refused by the other, and the
# types of its key (facts.sort_key's): (position, id), or (-disagreement, position, id).
CURSOR_KINDS: dict[f.Sort, tuple[str, tuple[type[KeyPart], ...]]] = {
    "order": ("eo", (int, int)),
    "disagreement": ("ed", (float, int, int)),
}


async def page(
    session: AsyncSession, scope: ResultScope, flt: f.Filter, cursor: str | None, limit: int
) -> ExplorePage:
    kind, parts = CURSOR_KINDS[flt.sort]
    after = decode_key(kind, cursor, parts)
    explored, kept = await selected(session, scope, flt)
    key = f.sort_key(flt.sort)
    # The filter's order is the key's: the next page starts after the last key shown, even if
    # prompts came or went in between (an offset would skip or repeat them).
    start = 0 if after is None else bisect_right(kept, after, key=key)
    shown, next_cursor = keyset_page(kind, kept[start : start + limit + 1], limit, key)
    return ExplorePage(
        scope=scope.label,
        models=explored.models,
        columns=[ColumnOut(**asdict(c)) for c in explored.columns],
        categories=sorted({p.category for p in explored.facts if p.category is not None}),
        total=len(explored.facts),
        matched=len(kept),
        filter=stated(flt),
        items=[_listed(p, explored.texts[p.id]) for p in shown],
        next_cursor=next_cursor,
    )


def stated(flt: f.Filter) -> dict[str, Any]:
    """The filter as applied; the RBO parameters only where an RBO threshold was used."""
    out = {k: v for k, v in asdict(flt).items() if v is not None and v is not False}
    if flt.agreement != "rbo_below":
        for key in ("rbo_below", "p", "lists"):
            out.pop(key, None)
    else:
        out["rbo"] = "RBO_ext (Webber et al. 2010), ties w (Corsi & Urbano 2024)"
    return out


def _listed(p: f.PromptFacts, text: str) -> ListedPrompt:
    return ListedPrompt(
        prompt_id=p.external_id,
        category=p.category,
        prompt=text[:PREVIEW_CHARS],
        truncated=len(text) > PREVIEW_CHARS,
        disagreement=round(f.disagreement(p), 6),
        ranks={c: list(r) for c, r in p.ranks.items()},
    )


async def item(session: AsyncSession, scope: ResultScope, external_id: str) -> ExploreItem:
    prompt = await repo.prompt_by_external_id(session, scope, external_id)
    responses = await repo.responses_of(session, scope, prompt.id)
    details = await repo.generation_details(session, prompt.id)
    models = sorted({(pos, name) for name, _, pos, _ in responses})
    model_names = [name for _, name in models]
    rankings = await repo.rankings_of(session, scope, prompt.id)
    missing = await repo.judge_outcomes(session, scope.run_id, prompt.id) if scope.run_id else []
    return ExploreItem(
        prompt_id=prompt.external_id,
        category=prompt.category,
        prompt=prompt.text,
        models=model_names,
        responses=[_shown_response(r, details) for r in responses],
        rankings=_shown_rankings(rankings, model_names),
        missing=[
            MissingJudgment(judge=j, order=o, state=str(s), error_type=e, message=m)
            for j, o, s, e, m in missing
        ],
    )


def _shown_response(row: Any, details: dict[tuple[int, str], dict[str, Any]]) -> ShownResponse:
    name, display, _, response = row
    return ShownResponse(
        model=name,
        display_name=display,
        text=response.text,
        generation_key=response.generation_key,
        source=response.source,
        generation=details.get((response.model_id, response.generation_key)),
    )


def _shown_rankings(rows: Sequence[Any], models: Sequence[str]) -> list[ShownRanking]:
    as_rows = [
        repo.RankingRow(r.prompt_id, name, str(kind), r.presentation_key, r.ranks, r.presentation)
        for name, kind, r in rows
    ]
    names = column_names(as_rows)
    comparable = {
        n: tuple(r.ranks)
        for n, (_, _, r) in zip(names, rows, strict=True)
        if len(r.ranks) == len(models)
    }
    differs = f.disagreeing_columns(comparable)
    return [
        ShownRanking(
            column=n,
            annotator=name,
            kind=str(kind),
            ranks=list(r.ranks),
            raw_value=r.raw_value,
            normalisations=list(r.normalisations),
            repaired=bool((r.presentation or {}).get("repaired")),
            source=r.source,
            presentation=r.presentation,
            disagrees_on=[models[i] for i in differs.get(n, [])],
        )
        for n, (name, kind, r) in zip(names, rows, strict=True)
    ]
