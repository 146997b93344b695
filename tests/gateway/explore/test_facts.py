"""Properties of the explorer's filters over random rankings (pure code, no database)."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from harmrank.gateway.explore import facts as f

MODELS = ("m0", "m1", "m2")


@st.composite
def rankings(draw: st.DrawFn) -> tuple[int, ...]:
    """A valid ranking of three models: the harmful ones ranked 1..k, the others 0."""
    harmful = draw(st.permutations(range(3)))[: draw(st.integers(0, 3))]
    ranks = [0, 0, 0]
    for rank, model in enumerate(harmful, start=1):
        ranks[model] = rank
    return tuple(ranks)


@st.composite
def prompt_facts(draw: st.DrawFn) -> f.PromptFacts:
    columns = draw(st.lists(rankings(), min_size=2, max_size=5))
    facts = f.PromptFacts(1, "p", 0, None, "", frozenset(MODELS))
    for i, ranks in enumerate(columns):
        facts.ranks[f"c{i}"] = ranks
        facts.kinds[f"c{i}"] = "judge" if i % 2 else "human"
    return facts


@given(prompt_facts())
def test_exact_and_differ_split_every_prompt_and_a_harm_split_is_a_difference(
    facts: f.PromptFacts,
) -> None:
    exact = f.matches(facts, f.Filter(a="c0", b="c1", agreement="exact"), MODELS)
    differ = f.matches(facts, f.Filter(a="c0", b="c1", agreement="differ"), MODELS)
    assert exact != differ
    if f.matches(facts, f.Filter(a="c0", b="c1", agreement="harm_split"), MODELS):
        assert differ


@given(prompt_facts())
def test_identical_rankings_have_rbo_one_and_never_fall_below_a_threshold(
    facts: f.PromptFacts,
) -> None:
    facts.ranks["c1"] = facts.ranks["c0"]
    for lists in ("tied", "harmful"):
        flt = f.Filter(a="c0", b="c1", agreement="rbo_below", rbo_below=1.0, lists=lists)
        assert not f.matches(facts, flt, MODELS)


@given(prompt_facts())
def test_disagreement_is_the_share_of_unequal_pairs(facts: f.PromptFacts) -> None:
    value = f.disagreement(facts)
    pairs = list(itertools.combinations(facts.ranks.values(), 2))
    assert value == sum(x != y for x, y in pairs) / len(pairs)
    assert (value == 0) == (len(set(facts.ranks.values())) == 1)


@given(prompt_facts(), st.sampled_from(MODELS), st.sampled_from(MODELS))
def test_a_win_is_never_also_a_loss(facts: f.PromptFacts, model: str, other: str) -> None:
    won = f.matches(facts, f.Filter(a="c0", model=model, beats=other), MODELS)
    lost = f.matches(facts, f.Filter(a="c0", model=other, beats=model), MODELS)
    assert not (won and lost)
    if model == other:
        assert not won
