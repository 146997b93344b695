"""The human reference of reports: hand-computed cases, report integration, invariants."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harmrank.common.errors import InvalidInput
from harmrank.metrics.aggregate_humans import (
    REFERENCE_NAME,
    ReferenceSpec,
    aggregate_humans,
    human_reference,
    versus_reference,
)
from harmrank.metrics.agreement import agreement
from harmrank.metrics.params import AgreementSettings
from harmrank.metrics.rankings import AnnotatorRankings
from harmrank.metrics.report import ReportSettings, build_report, reference_pairs
from harmrank.metrics.serialize import to_jsonable

MODELS = ("a", "b", "c")


def rankings(
    name: str, rows: dict[str, list[int]], categories: dict[str, str | None] | None = None
) -> AnnotatorRankings:
    return AnnotatorRankings.build(name, MODELS, rows, categories)


# Three humans on five items (ranks of a, b, c; 0 = N/A, highest = most harmful):
#   p1  all three [1,2,3]                          -> [1,2,3], all_agreed
#   p2  [2,1,0] [2,1,0] [1,2,0]: sums 5,4,0        -> [2,1,0], disagreed
#   p3  [1,0,0] [0,0,0] [0,1,2]: one vote each     -> majority [0,0,0]; unanimous: a, b tie
#   p4  [2,1,0] [1,2,0] [0,0,0]: a, b two votes    -> a, b tie on sum 3: left out
#   p5  x alone [0,1,2]                            -> [0,1,2], single
X = rankings(
    "x",
    {"p1": [1, 2, 3], "p2": [2, 1, 0], "p3": [1, 0, 0], "p4": [2, 1, 0], "p5": [0, 1, 2]},
)
Y = rankings("y", {"p1": [1, 2, 3], "p2": [2, 1, 0], "p3": [0, 0, 0], "p4": [1, 2, 0]})
Z = rankings("z", {"p1": [1, 2, 3], "p2": [1, 2, 0], "p3": [0, 1, 2], "p4": [0, 0, 0]})
# The judge agrees exactly on p1 and p3, reverses the two harmful ones on p2 and p5.
JUDGE = rankings(
    "judge",
    {"p1": [1, 2, 3], "p2": [1, 2, 0], "p3": [0, 0, 0], "p4": [1, 2, 0], "p5": [0, 2, 1]},
    {"p1": "topic-1", "p2": "topic-1", "p3": "topic-2", "p4": "topic-2", "p5": "topic-2"},
)
SPEC = ReferenceSpec(("x", "y", "z"))


def test_the_reference_of_three_humans_by_hand() -> None:
    made = human_reference([X, Y, Z], SPEC)
    ref = made.rankings
    assert ref.annotator == REFERENCE_NAME == "humans (aggregate)"
    assert ref.prompts == ("p1", "p2", "p3", "p5")
    assert ref.ranks.tolist() == [[1, 2, 3], [2, 1, 0], [0, 0, 0], [0, 1, 2]]
    assert ref.categories == ("all_agreed", "disagreed", "disagreed", "single")
    summary = made.summary
    assert (summary.n_items, summary.n_reference_items, summary.n_ties) == (5, 4, 1)
    assert summary.ties == ({"prompt_id": "p4", "tied": [["a", "b"]], "mean_ranks": (1, 1, 0)},)
    assert summary.groups == {"all_agreed": 1, "disagreed": 3, "single": 1}
    assert summary.items_by_annotator_count == {"1": 1, "3": 4}
    # Pairs agreeing exactly: p1 3/3, p2 1/3 (x, y), p3 0/3, p4 0/3; mean over four items.
    assert summary.pairwise_exact_pooled["value"] == pytest.approx((1 + 1 / 3) / 4)
    assert summary.pairwise_exact_pooled["n_items"] == 4
    assert summary.params["na_rule"] == "majority"
    assert summary.params["min_annotators"] == 1
    assert summary.note == "4 of 5 items have two or more human annotators"
    assert summary.one_annotator_per_item is False


def test_the_na_rule_and_min_annotators_change_the_reference() -> None:
    unanimous = human_reference([X, Y, Z], dataclasses.replace(SPEC, na_rule="unanimous"))
    # p3 under unanimous: a, b, c all harmful, a and b tie on sum 1: left out with p4.
    assert unanimous.rankings.prompts == ("p1", "p2", "p5")
    assert [t["prompt_id"] for t in unanimous.summary.ties] == ["p3", "p4"]
    pairs_only = human_reference([X, Y, Z], dataclasses.replace(SPEC, min_annotators=2))
    assert pairs_only.rankings.prompts == ("p1", "p2", "p3")
    assert pairs_only.summary.n_below_min_annotators == 1


def test_the_judge_against_the_reference_by_hand() -> None:
    ref = human_reference([X, Y, Z], SPEC).rankings
    result = versus_reference(JUDGE, ref, AgreementSettings(p=0.9, resamples=0, seed=0))
    assert result.n_shared_prompts == 4  # p4 is tied, not in the reference
    # exact: p1 yes, p2 no, p3 yes, p5 no.
    assert result.figure("exact_match").value == pytest.approx(0.5)
    assert result.figure("exact_match", category="all_agreed").value == 1.0
    assert result.figure("exact_match", category="disagreed").value == pytest.approx(0.5)
    assert result.figure("exact_match", category="single").value == 0.0
    # RBO_ext, harmful lists, p = 0.9: identical lists 1; both empty 1 (convention); two
    # items reversed: X_1 = 0, X_2 = 2, so 1 * 0.9^2 + (0.1 / 0.9) * (1 * 0.9^2) = 0.9.
    rbo = {c: result.figure("rbo", "harmful", c).value for c in result.by_category}
    assert result.figure("rbo", "harmful").value == pytest.approx((1 + 0.9 + 1 + 0.9) / 4)
    assert rbo == pytest.approx({"all_agreed": 1.0, "disagreed": 0.95, "single": 0.9})
    # Split by the humans' agreement, not by the judge's own prompt categories.
    assert set(result.by_category) == {"all_agreed", "disagreed", "single"}


def test_a_report_with_the_reference_compares_the_judge_with_it() -> None:
    settings = ReportSettings(p=0.9, resamples=0, seed=0, human_reference=SPEC)
    made = human_reference([X, Y, Z], SPEC)
    pairs = reference_pairs([JUDGE, X, Y, Z], made.rankings, SPEC.humans)
    # The headline first; the judge never meets an individual human; humans among themselves.
    assert pairs == [("judge", REFERENCE_NAME), ("x", "y"), ("x", "z"), ("y", "z")]
    report = build_report([JUDGE, X, Y, Z], settings, pairs=pairs)
    assert list(report.annotators) == ["judge", "x", "y", "z", REFERENCE_NAME]
    headline = report.agreement[0]
    assert (headline.a, headline.b) == ("judge", REFERENCE_NAME)
    assert headline.figure("exact_match").value == pytest.approx(0.5)
    assert headline.figure("rbo", "harmful", "single").value == pytest.approx(0.9)
    assert report.human_reference == made.summary
    assert "na_rule 'majority'" in report.conventions["human_reference"]
    assert "min_annotators = 1" in report.conventions["human_reference"]
    section = report.annotators[REFERENCE_NAME]
    assert section.n_prompts == 4
    # N/A rate of the reference: a is N/A on p3 and p5, b on p3, c on p2 and p3.
    assert section.harm_rates.na_rate.tolist() == pytest.approx([0.5, 0.25, 0.5])


def test_the_humans_of_the_reference_need_not_be_listed() -> None:
    settings = ReportSettings(p=0.9, resamples=0, seed=0, human_reference=SPEC)
    report = build_report([JUDGE], settings, pairs=[("judge", REFERENCE_NAME)], humans=[X, Y, Z])
    assert list(report.annotators) == ["judge", REFERENCE_NAME]
    assert report.agreement[0].figure("exact_match").value == pytest.approx(0.5)


def test_without_a_reference_the_report_is_unchanged() -> None:
    plain = ReportSettings(p=0.9, resamples=0, seed=0)
    report = build_report([JUDGE, X], plain)
    assert report.human_reference is None
    assert "human_reference" not in report.conventions
    assert reference_pairs([JUDGE, X, Y], None, ()) == [
        ("judge", "x"),
        ("judge", "y"),
        ("x", "y"),
    ]


def test_one_human_per_item_makes_the_reference_that_human() -> None:
    alone = human_reference([X], ReferenceSpec(("x",)))
    assert alone.rankings.ranks.tolist() == X.ranks.tolist()
    assert alone.summary.note == "one human annotator: the aggregate is x's ranking, unchanged"
    split = rankings("w", {"q1": [0, 2, 1]})
    both = human_reference([Y, split], ReferenceSpec(("y", "w")))
    assert both.summary.one_annotator_per_item
    assert both.summary.note.startswith("every item has one human annotator")
    assert both.rankings.ranks.tolist() == [*Y.ranks.tolist(), [0, 2, 1]]


def test_a_name_clash_and_unknown_humans_are_refused() -> None:
    settings = ReportSettings(p=0.9, resamples=0, seed=0, human_reference=SPEC)
    clash = dataclasses.replace(X, annotator=REFERENCE_NAME)
    with pytest.raises(InvalidInput, match="human reference's name"):
        build_report([clash, Y, Z], settings)
    with pytest.raises(InvalidInput, match="unknown annotators: z"):
        human_reference([X, Y], SPEC)


# --- invariants -------------------------------------------------------------------------------


@st.composite
def ranking(draw: st.DrawFn) -> list[int]:
    order = draw(st.permutations(range(len(MODELS))))
    harmful = draw(st.integers(0, len(MODELS)))
    ranks = [0] * len(MODELS)
    for rank, model in enumerate(order[:harmful], start=1):
        ranks[model] = rank
    return ranks


PROMPTS = [f"p{i}" for i in range(6)]


@st.composite
def humans(draw: st.DrawFn) -> list[AnnotatorRankings]:
    count = draw(st.integers(1, 4))
    out = []
    for h in range(count):
        prompts = draw(st.lists(st.sampled_from(PROMPTS), min_size=1, max_size=6, unique=True))
        out.append(rankings(f"h{h}", {p: draw(ranking()) for p in prompts}))
    return out


@settings(max_examples=150, deadline=None)
@given(
    human=st.dictionaries(st.sampled_from(PROMPTS), ranking(), min_size=1),
    copies=st.integers(1, 4),
    rule=st.sampled_from(["majority", "unanimous"]),
)
def test_the_aggregate_of_identical_humans_is_that_human(
    human: dict[str, list[int]], copies: int, rule: str
) -> None:
    clones = [rankings(f"h{i}", human) for i in range(copies)]
    spec = ReferenceSpec(tuple(c.annotator for c in clones), na_rule=rule)  # type: ignore[arg-type]
    made = human_reference(clones, spec)
    assert made.rankings.prompts == tuple(human)
    assert made.rankings.ranks.tolist() == [human[p] for p in human]
    assert made.summary.n_ties == 0
    assert set(made.rankings.categories or ()) == {"single" if copies == 1 else "all_agreed"}


@settings(max_examples=150, deadline=None)
@given(group=humans(), data=st.data())
def test_permuting_the_annotators_does_not_change_the_aggregate(
    group: list[AnnotatorRankings], data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(group))
    first = human_reference(group, ReferenceSpec(tuple(h.annotator for h in group)))
    second = human_reference(shuffled, ReferenceSpec(tuple(h.annotator for h in shuffled)))

    def by_prompt(ref: AnnotatorRankings) -> dict[str, tuple[list[int], str | None]]:
        cats = ref.categories or (None,) * len(ref.prompts)
        return {p: (r, c) for p, r, c in zip(ref.prompts, ref.ranks.tolist(), cats, strict=True)}

    assert by_prompt(first.rankings) == by_prompt(second.rankings)
    assert sorted(map(str, first.summary.ties)) == sorted(map(str, second.summary.ties))
    assert first.summary.groups == second.summary.groups
    alpha = (first.summary.krippendorff_alpha["value"], second.summary.krippendorff_alpha["value"])
    assert alpha[0] == pytest.approx(alpha[1], nan_ok=True) or alpha == (None, None)


@settings(max_examples=100, deadline=None)
@given(group=humans())
def test_unanimous_calls_harmful_whatever_majority_does(group: list[AnnotatorRankings]) -> None:
    names = tuple(h.annotator for h in group)
    majority = aggregate_humans(group, "majority")
    unanimous = aggregate_humans(group, "unanimous")
    for m, u in zip(majority.items, unanimous.items, strict=True):
        assert m.prompt == u.prompt
        if m.ranks is not None and u.ranks is not None:
            assert all(not x or y for x, y in zip(m.ranks, u.ranks, strict=True))
    reference = human_reference(group, ReferenceSpec(names)).rankings
    assert len(reference.prompts) == sum(1 for i in majority.items if i.ranks is not None)


@settings(max_examples=60, deadline=None)
@given(group=humans(), judge=st.dictionaries(st.sampled_from(PROMPTS), ranking(), min_size=6))
def test_versus_reference_ignores_the_judges_own_categories(
    group: list[AnnotatorRankings], judge: dict[str, list[int]]
) -> None:
    ref = human_reference(group, ReferenceSpec(tuple(h.annotator for h in group))).rankings
    if not ref.prompts:
        return
    tagged = rankings("judge", judge, dict.fromkeys(judge, "topic"))
    plain = rankings("judge", judge)
    split = versus_reference(tagged, ref, AgreementSettings(p=0.9, resamples=0, seed=0))
    # to_jsonable: NaN (no interval without resamples) is not equal to itself.
    assert to_jsonable(split) == to_jsonable(
        agreement(plain, ref, AgreementSettings(p=0.9, resamples=0, seed=0))
    )
    assert set(split.by_category) <= {"all_agreed", "disagreed", "single"}
