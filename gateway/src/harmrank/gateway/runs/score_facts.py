"""What a run's report states beside its rankings: the prompts each judge was asked to rank,
the tasks that failed for good (``failures.failure_groups``, the same groups ``run status``
shows), and every judge ranking with the order its responses were shown in, for the
position-bias test of seeded orders.

Kept apart from ``score_inputs`` (which reads the rankings themselves): one read each, in the
score task's transaction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from harmrank.gateway.db.run_models import Stage
from harmrank.gateway.runs import repository
from harmrank.gateway.runs.failures import FailureGroup, failure_groups
from harmrank.metrics.position import positions_of
from harmrank.metrics.rankings import AnnotatorRankings
from harmrank.metrics.schemas import PresentedIn, RunFactsIn, TaskFailuresIn

_FIRST_ERROR_CHARS = 2000


async def run_facts(
    session: AsyncSession,
    run_id: int,
    models: tuple[str, ...],
    prompts: Mapping[int, tuple[str, str | None]],
    judges: Sequence[AnnotatorRankings],
) -> RunFactsIn:
    """``prompts``: prompt id -> (external id, category) of the run; ``judges``: every judge of
    the run's spec, those that ranked nothing included."""
    groups = await failure_groups(session, run_id)
    return RunFactsIn(
        expected={j.annotator: len(prompts) for j in judges},
        failures=[_failures(g) for g in groups if g.failed and (g.judge or g.model)],
        presented=await _presented(session, run_id, models, prompts),
    )


def _failures(group: FailureGroup) -> TaskFailuresIn:
    first = group.first_error
    return TaskFailuresIn(
        stage="judge" if group.stage == Stage.JUDGE else "generate",
        name=group.judge or group.model or "",
        failed=group.failed,
        first_error=f"{first.error_type}: {first.message}"[:_FIRST_ERROR_CHARS],
    )


async def _presented(
    session: AsyncSession,
    run_id: int,
    models: tuple[str, ...],
    prompts: Mapping[int, tuple[str, str | None]],
) -> list[PresentedIn]:
    """Each judge's rankings of the run, one per presentation order, with where each model was
    shown; a ranking stored without its order (none the judge service makes) is left out."""
    found = await repository.judge_ranks(session, run_id)
    ranks_of: defaultdict[str, list[list[int]]] = defaultdict(list)
    shown: defaultdict[str, list[list[int]]] = defaultdict(list)
    judged: defaultdict[str, set[int]] = defaultdict(set)
    for judge, prompt_id, ranks, presentation in found:
        order = (presentation or {}).get("order")
        if prompt_id in prompts and isinstance(order, list):
            ranks_of[judge].append(ranks)
            shown[judge].append(positions_of(order, models))
            judged[judge].add(prompt_id)
    return [
        PresentedIn(annotator=j, n_prompts=len(judged[j]), ranks=ranks_of[j], positions=shown[j])
        for j in ranks_of
    ]
