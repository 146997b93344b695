"""The stage registry: for each stage, what its task loads, what it calls, what it stores.

The worker walks this table and never asks which stage a task is in; a new stage is one more
entry (its planning aside). Loading happens in one of two places:

- ``with_claim``: in the transaction that claimed the batch, from what the claim's statement
  read with each task (its prompt, model or judge), plus a statement or two for all its tasks
  of the stage (the spec of a run the worker has not worked for yet; judge: the responses to
  judge);
- otherwise in a read transaction of the task's own when it starts (score: every ranking of
  the run, too large to hold up the claim of the others).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from harmrank.gateway.db.base import utc_now
from harmrank.gateway.db.run_models import RunReport, Stage
from harmrank.gateway.runs import score_inputs, work
from harmrank.gateway.runs.executors import Executors
from harmrank.gateway.runs.tasks import ClaimedTask
from harmrank.gateway.runs.work import Loaded, Made, Runs, ScoreWork

Load = Callable[[AsyncSession, Sequence[ClaimedTask], Runs], Awaitable[dict[int, Loaded]]]


@dataclass(frozen=True)
class StageWork:
    load: Load
    """What the tasks need, by task id (``work.ALREADY_STORED`` when the result exists)."""
    with_claim: bool
    """Loaded in the claiming transaction (else in a read of the task's own)."""
    call: Callable[[Executors, Any], Awaitable[Any]]
    """The downstream call, with what ``load`` answered."""
    made: Callable[[ClaimedTask, Any, Any], Made]
    """What to store: from the task, what it loaded and what the call answered."""
    paid_calls: bool = False
    """Its call reaches a model server or a provider, so it draws on the task's call budget."""


async def _load_scores(
    session: AsyncSession, tasks: Sequence[ClaimedTask], _runs: Runs
) -> dict[int, Loaded]:
    return {task.id: await score_inputs.load_score(session, task) for task in tasks}


def _report_made(task: ClaimedTask, loaded: ScoreWork, report: dict[str, Any]) -> Made:
    """The run's report; a later score of the same run (after a resume) replaces it."""
    details = {"annotators": len(loaded.annotators), "pairs": len(loaded.pairs)}
    # created_at set here, not by the column default (an insert's only): a replaced report is
    # a new one, and the report page's cache and the explorer's fingerprint key on its time.
    row = {"run_id": task.run_id, "report": report, "created_at": utc_now()}
    return Made(RunReport, row, details, replace=True)


STAGES: dict[Stage, StageWork] = {
    Stage.GENERATE: StageWork(
        load=work.load_generates,
        with_claim=True,
        call=lambda executors, loaded: executors.generate.execute(loaded),
        made=work.response_made,
        paid_calls=True,
    ),
    Stage.JUDGE: StageWork(
        load=work.load_judges,
        with_claim=True,
        call=lambda executors, loaded: executors.judge.execute(loaded),
        made=work.ranking_made,
        paid_calls=True,
    ),
    Stage.SCORE: StageWork(
        load=_load_scores,
        with_claim=False,
        call=lambda executors, loaded: executors.score.execute(loaded),
        made=_report_made,
    ),
}


async def load_claimed(
    session: AsyncSession, tasks: Sequence[ClaimedTask], runs: Runs
) -> dict[int, Loaded]:
    """What the claimed tasks of the stages that load with their claim need, by task id
    (``runs``: the worker's knowledge of their runs)."""
    loaded: dict[int, Loaded] = {}
    for stage, handler in STAGES.items():
        mine = [t for t in tasks if t.stage == stage]
        if mine and handler.with_claim:
            loaded |= await handler.load(session, mine, runs)
    return loaded
