"""The job tables: runs, the prompts each run covers, its tasks, idempotency keys and reports.

A run's status and progress are not stored: they are derived from its tasks by a query
(`harmrank.gateway.runs.status`), so they can never disagree with the tasks. The schema is made
by migration 0002; these classes must match it (the schema tests compare the two).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from harmrank.gateway.db.base import Base, BigIntPK, JSONType, cascade_fk, string_enum, utc_now


class Stage(StrEnum):
    GENERATE = "generate"
    JUDGE = "judge"
    SCORE = "score"


class TaskState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    REUSED = "reused"
    CANCELLED = "cancelled"


FINISHED_STATES = (TaskState.DONE, TaskState.FAILED, TaskState.REUSED)
"""States a later stage may go on from: the task will not change again by itself."""
SUCCEEDED_STATES = (TaskState.DONE, TaskState.REUSED)
_SUCCEEDED_SQL = ", ".join(f"'{state}'" for state in SUCCEEDED_STATES)
PENDING_GENERATE = f"stage = '{Stage.GENERATE}' AND state NOT IN ({_SUCCEEDED_SQL})"
"""The generate tasks a judge task waits for, as SQL: the condition of the partial index
``ix_tasks_pending_generate``, which the claim's readiness check spells the same way (with
constants, so PostgreSQL can prove the index covers it)."""
WORK = (Stage.GENERATE, Stage.JUDGE)
"""The stages whose tasks a run's score waits for."""
ACTIVE_STATES = (TaskState.QUEUED, TaskState.RUNNING)
"""The states of a task still to be done, the ones it leaves by itself: a run's score waits
while its work has tasks in them, and a run with none of its tasks in them is at rest."""
WORK_TO_DO = (
    f"stage IN ({', '.join(repr(str(s)) for s in WORK)})"
    f" AND state IN ({', '.join(repr(str(s)) for s in ACTIVE_STATES)})"
)
"""The generate and judge tasks still to do, as SQL: the condition of the partial index
``ix_tasks_work_to_do``, which the score's readiness check spells the same way (with
constants, so PostgreSQL can prove the index covers it)."""
QUEUED = f"state = '{TaskState.QUEUED}'"
"""The condition of the partial index ``ix_tasks_queued_id``, which the ready-task claim walks
(spelled the same way there, with a constant)."""


PLANNING = "planned_at IS NULL"


class Run(Base):
    __tablename__ = "runs"
    # The runs whose tasks are being written, which every worker looks for now and then
    # (``planner.finish_half_planned``): a few, where the runs are many.
    __table_args__ = (
        Index(
            "ix_runs_planning", "id", postgresql_where=text(PLANNING), sqlite_where=text(PLANNING)
        ),
    )

    id: Mapped[int] = mapped_column(BigIntPK, Identity(), primary_key=True)
    dataset_id: Mapped[int] = mapped_column(BigIntPK, cascade_fk("datasets.id"), index=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSONType)
    """The request that made the run (`RunCreate`), normalised: what the run will do."""
    created_at: Mapped[datetime] = mapped_column(default=utc_now, server_default=func.now())
    cancelled_at: Mapped[datetime | None] = mapped_column()
    """Set while the run is cancelled: workers abandon its running tasks at their heartbeat."""
    planned_at: Mapped[datetime | None] = mapped_column()
    """When the last of its tasks were written; empty while they are (``runs.planner``)."""
    # The W3C traceparent of the request that created the run (when tracing was on).
    trace_context: Mapped[str | None] = mapped_column(String(128))
    resumes: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    """How many times the run was resumed: the only change to its finished tasks' states, so a
    reader that keeps a finished run's task counts knows from it when to count again."""


class RunPrompt(Base):
    """One prompt of a run's sampled prompt set; `position` keeps the sample's order."""

    __tablename__ = "run_prompts"

    run_id: Mapped[int] = mapped_column(BigIntPK, cascade_fk("runs.id"), primary_key=True)
    prompt_id: Mapped[int] = mapped_column(
        BigIntPK, cascade_fk("prompts.id"), primary_key=True, index=True
    )
    position: Mapped[int] = mapped_column(Integer)


class Task(Base):
    __tablename__ = "tasks"
    __table_args__ = (
        UniqueConstraint("run_id", "key"),
        # The claim walks one state's tasks in id order and stops at the first it may take.
        Index("ix_tasks_state_id", "state", "id"),
        # The same walk for queued tasks, whatever the statistics say: holding queued tasks only,
        # it is never costlier than the primary key, which stale statistics (every task queued,
        # as at planning) made the planner walk from the first task ever (migration 0009).
        Index(
            "ix_tasks_queued_id",
            "id",
            postgresql_where=text(QUEUED),
            sqlite_where=text(QUEUED),
        ),
        # Readiness and progress: the tasks of one run by stage and state.
        Index("ix_tasks_run_id_stage_state", "run_id", "stage", "state"),
        # A judge's readiness: its prompt's generate tasks that have not succeeded. Only those
        # are in it, so the claim's check reads the few pending ones, not every task ever made.
        Index(
            "ix_tasks_pending_generate",
            "run_id",
            "prompt_id",
            postgresql_where=text(PENDING_GENERATE),
            sqlite_where=text(PENDING_GENERATE),
        ),
        # A score's readiness: its run's generate and judge tasks still to do. Only those are in
        # it, so the claim's check reads what is left of the run, not every task ever made.
        Index(
            "ix_tasks_work_to_do",
            "run_id",
            postgresql_where=text(WORK_TO_DO),
            sqlite_where=text(WORK_TO_DO),
        ),
        # A run's failing tasks (failed, or queued for a retry), which every read of its status
        # groups: a few, where the run's tasks are many.
        Index(
            "ix_tasks_failing",
            "run_id",
            postgresql_where=text("error_type IS NOT NULL"),
            sqlite_where=text("error_type IS NOT NULL"),
        ),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, Identity(), primary_key=True)
    run_id: Mapped[int] = mapped_column(BigIntPK, cascade_fk("runs.id"))
    key: Mapped[str] = mapped_column(String(200))
    """Unique within the run: the stage and the natural key of the result the task makes."""
    stage: Mapped[Stage] = mapped_column(string_enum(Stage, "stage"))
    state: Mapped[TaskState] = mapped_column(string_enum(TaskState, "state"))
    # Indexed for the cascade when a dataset's prompts are deleted.
    prompt_id: Mapped[int | None] = mapped_column(BigIntPK, cascade_fk("prompts.id"), index=True)
    model_id: Mapped[int | None] = mapped_column(BigIntPK, ForeignKey("models.id"))
    generation_key: Mapped[str | None] = mapped_column(String(64))
    annotator_id: Mapped[int | None] = mapped_column(BigIntPK, ForeignKey("annotators.id"))
    presentation_key: Mapped[str | None] = mapped_column(String(64))
    order_index: Mapped[int | None] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    not_before: Mapped[datetime | None] = mapped_column()
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None] = mapped_column()
    error_type: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    """What the call reported beside the stored result (tokens, finish reason, cost)."""
    created_at: Mapped[datetime] = mapped_column(default=utc_now, server_default=func.now())
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()


class IdempotencyKey(Base):
    """A client's `Idempotency-Key` and the request it came with: one run per key."""

    __tablename__ = "idempotency_keys"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_sha256: Mapped[str] = mapped_column(String(64))
    run_id: Mapped[int] = mapped_column(BigIntPK, cascade_fk("runs.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utc_now, server_default=func.now())


class RunReport(Base):
    __tablename__ = "run_reports"

    run_id: Mapped[int] = mapped_column(BigIntPK, cascade_fk("runs.id"), primary_key=True)
    report: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(default=utc_now, server_default=func.now())
