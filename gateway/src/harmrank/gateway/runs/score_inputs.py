"""A run's score task: the rankings its report is computed from, read in one read transaction.

The judges' rankings of the run's responses (one per prompt per judge: the consensus of its
presentation orders, by the judge service's own rule, ``common.contracts.judging.consensus``),
and the humans who ranked the dataset's imported responses when the run judged exactly those,
aggregated into the human reference each judge is compared with.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from harmrank.common.contracts.judging import consensus
from harmrank.gateway.annotation import budget
from harmrank.gateway.db.models import AnnotatorKind
from harmrank.gateway.db.run_models import TaskState
from harmrank.gateway.results import repository as results
from harmrank.gateway.runs import planner, repository, score_facts, score_ranks
from harmrank.gateway.runs.tasks import ClaimedTask, TaskFailed
from harmrank.gateway.runs.work import JUDGE_ABSTAINED, ScoreWork, run_spec
from harmrank.metrics.aggregate_humans import REFERENCE_NAME, ReferenceSpec, human_reference
from harmrank.metrics.agreement import CATEGORY_CLUSTERS
from harmrank.metrics.rankings import AnnotatorRankings
from harmrank.metrics.report import ReportSettings, reference_pairs
from harmrank.metrics.report_ppi import platform_spec

_HUMAN_KINDS = (AnnotatorKind.HUMAN, AnnotatorKind.EXPERT, AnnotatorKind.AGGREGATE)


async def load_score(session: AsyncSession, task: ClaimedTask) -> ScoreWork:
    spec = await run_spec(session, task.run_id)
    models = await planner.run_models(session, spec)
    names = tuple(m.name for m in models)
    prompts = await repository.run_prompts(session, task.run_id)
    ranked = await score_ranks.read_judge_ranks(session, task.run_id, names, set(prompts))
    judges = await _judge_rankings(session, task.run_id, names, prompts, ranked)
    humans, note = await _human_rankings(session, task.run_id, models, prompts)
    annotators = [a for a in [*judges, *humans] if a.prompts]
    if not any(a.prompts for a in judges):
        raise TaskFailed(
            "nothing_to_score", "no judge ranked any prompt of the run", transient=False
        )
    aggregated = tuple(note.get("reference_aggregates") or ())
    made_by = spec.metrics.human_reference
    reference = (
        ReferenceSpec(aggregated, made_by.na_rule, made_by.min_annotators) if aggregated else None
    )
    settings = ReportSettings(
        p=spec.metrics.p,
        resamples=spec.metrics.resamples,
        seed=spec.metrics.seed,
        cluster_key=CATEGORY_CLUSTERS if spec.metrics.cluster_by == "category" else None,
        human_reference=reference,
    )
    notes = {
        "run_id": task.run_id,
        "prompts": len(prompts),
        "judges": {a.annotator: len(a.prompts) for a in judges},
        # Judges that ranked fewer prompts than the run has: their figures cover fewer items.
        "missing_rankings": {
            a.annotator: len(prompts) - len(a.prompts)
            for a in judges
            if len(a.prompts) < len(prompts)
        },
        "humans": note,
        "judge_outcomes": await _judge_outcomes(session, task.run_id),
    }
    judged = [a.annotator for a in judges if a.prompts]
    design = await budget.design(session, await repository.run_dataset_id(session, task.run_id))
    ppi = platform_spec(reference.name if reference else None, judged, design)
    # What the report states beside the rankings: coverage, failures, the orders shown.
    facts = await score_facts.run_facts(session, task.run_id, prompts, judges, ranked)
    pairs = _pairs(judges, annotators, reference)
    return ScoreWork(annotators, pairs, settings, notes, ppi, facts)


_PromptInfo = dict[int, tuple[str, str | None]]
"""Prompt id -> (external id, category), in the run's order."""


async def _judge_rankings(
    session: AsyncSession,
    run_id: int,
    models: tuple[str, ...],
    prompts: _PromptInfo,
    ranked: score_ranks.JudgeRanks,
) -> list[AnnotatorRankings]:
    """Each judge's ranking per prompt; several presentation orders are combined into one."""
    spec_judges = [j.name for j in (await run_spec(session, run_id)).judges]
    return [
        _rankings(j, models, prompts, _combined(ranked.by_prompt.get(j, {}))) for j in spec_judges
    ]


async def _judge_outcomes(session: AsyncSession, run_id: int) -> dict[str, dict[str, Any]]:
    """Per judge, what became of its judge tasks: ranked (``repaired``: after the one repair
    turn), abstained (with the count of each reason), or failed otherwise (with the first
    failure's error)."""
    outcomes: dict[str, dict[str, Any]] = {}
    ends = repository.judge_task_ends(session, run_id)
    async for judge, state, error_type, message, presented, repaired in ends:
        counts = outcomes.setdefault(
            judge,
            {"ranked": 0, "repaired": 0, "abstained": 0, "failed": 0, "abstained_because": {}},
        )
        if presented:
            counts["ranked"] += 1
            counts["repaired"] += bool(repaired)
        elif error_type == JUDGE_ABSTAINED:
            counts["abstained"] += 1
            reason = (message or "").partition(":")[0] or "unknown"
            counts["abstained_because"][reason] = counts["abstained_because"].get(reason, 0) + 1
        elif state in (TaskState.FAILED, TaskState.CANCELLED):
            counts["failed"] += 1
            if error_type is not None:
                counts.setdefault("first_error", f"{error_type}: {message or ''}"[:500])
    return outcomes


def _combined(by_prompt: dict[int, list[score_ranks.Ranks]]) -> dict[int, list[int]]:
    return {p: consensus(rankings) for p, rankings in by_prompt.items()}


def _rankings(
    name: str, models: tuple[str, ...], prompts: _PromptInfo, ranks: dict[int, list[int]]
) -> AnnotatorRankings:
    rows = {prompts[p][0]: ranks[p] for p in prompts if p in ranks}
    categories = {prompts[p][0]: prompts[p][1] for p in prompts if p in ranks}
    has_categories = any(c is not None for c in categories.values())
    return AnnotatorRankings.build(name, models, rows, categories if has_categories else None)


async def _human_rankings(
    session: AsyncSession, run_id: int, models: list[planner.RunModel], prompts: _PromptInfo
) -> tuple[list[AnnotatorRankings], dict[str, Any]]:
    """Humans ranked the imported responses: they join only a run that judged exactly those.

    The annotators of kind human (not the expert, not a stored aggregate) make the run's human
    reference, ``REFERENCE_NAME``: the judges are compared with it, not with each of them.
    """
    dataset_id = await repository.run_dataset_id(session, run_id)
    names = tuple(m.name for m in models)
    imported = all(m.imported for m in models)
    if not imported or names != await results.dataset_models(session, dataset_id):
        reason = "humans ranked the imported responses of the dataset's models; this run did not"
        return [], {"included": [], "excluded_because": reason, "reference": None}
    found = await results.annotator_ranks(session, _HUMAN_KINDS, list(prompts))
    by_annotator: defaultdict[str, dict[int, list[int]]] = defaultdict(dict)
    aggregated: dict[str, None] = {}
    for name, kind, prompt_id, ranks in found:
        by_annotator[name][prompt_id] = ranks
        if AnnotatorKind(kind) == AnnotatorKind.HUMAN:
            aggregated[name] = None
    humans = [_rankings(n, names, prompts, r) for n, r in by_annotator.items()]
    return humans, {
        "included": [h.annotator for h in humans],
        "excluded_because": None,
        "reference": REFERENCE_NAME if aggregated else None,
        "reference_aggregates": list(aggregated),
    }


def _pairs(
    judges: list[AnnotatorRankings],
    annotators: list[AnnotatorRankings],
    reference: ReferenceSpec | None,
) -> list[tuple[str, str]]:
    """Each judge against the human reference first, then against every other annotator it
    shares a prompt with, except the humans the reference stands for (humans among themselves
    are not this run's question)."""
    judge_names = [j.annotator for j in judges if j.prompts]
    if reference is None:
        return reference_pairs(annotators, None, (), compared=judge_names)
    made = human_reference(annotators, reference).rankings
    return reference_pairs(annotators, made, reference.humans, compared=judge_names)
