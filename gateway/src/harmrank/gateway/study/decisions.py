"""The study's two open data decisions, and the rankings under each choice.

1. **Group 10's direction.** Its rankings read 1 = most harmful; the authors' script reverses
   them, and so does the importer (``REVERSED_GROUPS``). "As written" keeps the file's numbers.
2. **Judge answers whose raw text ties two responses** ("Content A: 1 / Content B: 1 / ...").
   The authors' ``extracted_pred`` breaks the tie by position, and the importer takes it;
   "excluded" drops those prompts from that judge.

The authors' choices stay the default so the figures compare with the paper; the report shows
every figure under the other choices (``metrics.sensitivity``). The alternatives are rebuilt
from the raw values the import keeps beside the normalised ones, not from a second import.
"""

from __future__ import annotations

from collections.abc import Mapping

from harmrank.gateway.study.importer import REVERSED_GROUPS, _Rejected, normalise
from harmrank.gateway.study.notation import raw_answer_tied
from harmrank.gateway.study.records import HUMAN, Annotation, StudyImport
from harmrank.metrics.rankings import AnnotatorRankings
from harmrank.metrics.sensitivity import Concordance, Variant, concordance

GROUP_DECISION = "group 10 direction"
TIES_DECISION = "judge answers tied in their raw text"
JUDGES = ("gpt4o", "claude", "llama")


def tied_raw_answers(study: StudyImport) -> dict[str, list[str]]:
    """Per judge, the kept prompts whose raw answer is tied (``extracted_pred`` broke it)."""
    return {
        judge: sorted(p for p, a in study.selected(judge).items() if raw_answer_tied(a.raw_output))
        for judge in JUDGES
        if judge in study.annotators()
    }


def _as_written(a: Annotation) -> tuple[int, ...]:
    if a.group not in REVERSED_GROUPS:
        return a.ranks
    outcome = normalise(a.raw_ranking, reverse=False)
    # reversing is a bijection on valid rankings, so what was valid reversed is valid as written
    assert not isinstance(outcome, _Rejected), a
    return outcome[0]


def human_as_written(study: StudyImport, models: tuple[str, ...]) -> AnnotatorRankings:
    rows = {p: _as_written(a) for p, a in study.selected(HUMAN).items()}
    return AnnotatorRankings.build(HUMAN, models, rows)


def _without(r: AnnotatorRankings, prompts: list[str]) -> AnnotatorRankings:
    drop = set(prompts)
    rows = {p: tuple(int(v) for v in ranks) for p, ranks in zip(r.prompts, r.ranks, strict=True)}
    return AnnotatorRankings.build(
        r.annotator, r.models, {p: v for p, v in rows.items() if p not in drop}
    )


def variants(study: StudyImport, stored: Mapping[str, AnnotatorRankings]) -> list[Variant]:
    """The rankings under each choice of each decision; ``stored`` holds the defaults."""
    models = next(iter(stored.values())).models
    tied = tied_raw_answers(study)
    excluded = {**stored, **{j: _without(stored[j], tied[j]) for j in tied if j in stored}}
    return [
        Variant(GROUP_DECISION, "reversed, as the authors did (default)", dict(stored)),
        Variant(GROUP_DECISION, "as written", {**stored, HUMAN: human_as_written(study, models)}),
        Variant(TIES_DECISION, "broken by position, as extracted_pred (default)", dict(stored)),
        Variant(TIES_DECISION, "excluded", excluded),
    ]


def _group(
    study: StudyImport, number: int, models: tuple[str, ...], written: bool
) -> AnnotatorRankings:
    rows = {
        a.prompt_id: _as_written(a) if written else a.ranks
        for a in study.annotations
        if a.group == number
    }
    return AnnotatorRankings.build(f"group {number}", models, rows)


def _summed(label: str, judge: str, parts: list[Concordance]) -> Concordance:
    return Concordance(
        label,
        judge,
        sum(c.concordant for c in parts),
        sum(c.discordant for c in parts),
        sum(c.n_prompts for c in parts),
    )


def direction_evidence(
    study: StudyImport, stored: Mapping[str, AnnotatorRankings]
) -> list[Concordance]:
    """Concordance of each reversed group, as imported and as written, and of the other groups
    pooled, with each judge: the evidence for or against reversing."""
    models = next(iter(stored.values())).models
    numbers = sorted({a.group for a in study.annotations if a.group is not None})
    out = []
    for judge in (j for j in JUDGES if j in stored):
        for number in sorted(REVERSED_GROUPS & set(numbers)):
            for written, how in ((False, "as imported (reversed)"), (True, "as written")):
                c = concordance(_group(study, number, models, written), stored[judge])
                out.append(_summed(f"group {number} {how}", judge, [c]))
        others = [
            concordance(_group(study, n, models, False), stored[judge])
            for n in numbers
            if n not in REVERSED_GROUPS
        ]
        out.append(_summed("the other groups, pooled", judge, others))
    return out
