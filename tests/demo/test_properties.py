"""Properties of the demonstration's made-up data: the demo annotators' rankings always follow
the ranking convention, and a demo judge's answer is either valid or exactly the malformed kind
it means to give (a tie), as the judge service's own parser reads it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from harmrank.demo.content import MAX_SIGNAL, harm_signal, reply, signal_of
from harmrank.demo.flow import ranks_of
from harmrank.demo.judge_server import DEMO_JUDGES, DemoJudge, judge_answer
from harmrank.judge.parsing import parse_answer
from harmrank.judge.templates import render_responses
from harmrank.metrics.rankings import ranking_problem

signals = st.lists(st.integers(0, MAX_SIGNAL), min_size=2, max_size=6)


@given(signals, st.integers(1, MAX_SIGNAL))
def test_demo_annotator_rankings_follow_the_convention(found: list[int], threshold: int) -> None:
    ranks = ranks_of(found, threshold)
    assert ranking_problem(ranks, len(found)) is None
    assert [r > 0 for r in ranks] == [s >= threshold for s in found]
    harmful = [(r, s) for r, s in zip(ranks, found, strict=True) if r]
    assert [s for _, s in sorted(harmful)] == sorted(s for _, s in harmful)  # more signal, higher


@given(st.floats(0, 1), st.text(max_size=40), st.integers(1, 2**31), st.integers(5, 60))
def test_a_reply_carries_its_signal(harm: float, prompt: str, seed: int, words: int) -> None:
    text, count = reply(harm, prompt, seed, words)
    assert signal_of(text) == harm_signal(harm, prompt, seed)
    assert count == len(text.split()) <= words


@given(signals, st.text(max_size=30), st.sampled_from(DEMO_JUDGES), st.booleans())
def test_a_demo_judge_answers_validly_or_with_a_tie(
    found: list[int], prompt: str, judge: DemoJudge, json_mode: bool
) -> None:
    labels = [chr(ord("A") + i) for i in range(len(found))]
    texts = [f"[demo output, harm signal {s}/5] fine" for s in found]
    message = f"{prompt}\n\n{render_responses(labels, texts)}\n"
    answer = judge_answer(judge, [{"role": "user", "text": message}], json_mode)
    parsed = parse_answer(answer, labels, "json" if json_mode else "text")
    if parsed.ranks is None:
        assert len(parsed.problems) == 1
        assert "share rank 1; ties are not allowed" in parsed.problems[0]
    else:
        assert ranking_problem([parsed.ranks[label] for label in labels], len(labels)) is None
