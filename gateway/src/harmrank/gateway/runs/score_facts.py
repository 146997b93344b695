"""What a run's report states beside its rankings: the prompts each judge was asked to rank,
the tasks that failed for good (``failures.failure_groups``, the same groups ``run status``
shows), and every judge ranking with the order its responses were shown in, for the
position-bias test of seeded orders.

Kept apart from ``score_inputs`` (which reads the rankings themselves, once, with
``score_ranks``): in the score task's transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from harmrank.gateway.db.run_models import Stage
from harmrank.gateway.runs.failures import FailureGroup, failure_groups
from harmrank.gateway.runs.score_ranks import JudgeRanks
from harmrank.metrics.rankings import AnnotatorRankings
from harmrank.metrics.schemas import PresentedIn, RunFactsIn, TaskFailuresIn

_FIRST_ERROR_CHARS = 2000


async def run_facts(
    session: AsyncSession,
    run_id: int,
    prompts: Mapping[int, tuple[str, str | None]],
    judges: Sequence[AnnotatorRankings],
    ranked: JudgeRanks,
) -> RunFactsIn:
    """``prompts``: prompt id -> (external id, category) of the run; ``judges``: every judge of
    the run's spec, those that ranked nothing included; ``ranked``: the run's judge rankings."""
    groups = await failure_groups(session, run_id)
    return RunFactsIn(
        expected={j.annotator: len(prompts) for j in judges},
        failures=[_failures(g) for g in groups if g.failed and (g.judge or g.model)],
        presented=_presented(ranked),
    )


def _failures(group: FailureGroup) -> TaskFailuresIn:
    first = group.first_error
    return TaskFailuresIn(
        stage="judge" if group.stage == Stage.JUDGE else "generate",
        name=group.judge or group.model or "",
        failed=group.failed,
        first_error=f"{first.error_type}: {first.message}"[:_FIRST_ERROR_CHARS],
    )


def _presented(ranked: JudgeRanks) -> list[PresentedIn]:
    """Each judge's rankings of the run, one per presentation order, with where each model was
    shown; a ranking stored without its order (none the judge service makes) is left out.
    Built unvalidated: the lists are the stored rankings, each checked when stored, and a copy
    of 150,000 rankings' numbers would only cost memory; the metrics service validates them."""
    return [
        PresentedIn.model_construct(
            annotator=judge,
            n_prompts=len(shown.prompts),
            ranks=shown.ranks,
            positions=shown.positions,
        )
        for judge, shown in ranked.shown.items()
    ]
