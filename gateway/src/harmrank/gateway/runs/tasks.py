"""What a task is to the worker that holds it: its claim, how it failed, when it is retried,
what became of its lease, how it finished. No SQL here (that is ``queue``)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from harmrank.gateway.db.run_models import Stage

MAX_MESSAGE_CHARS = 2000
DEPENDENCY_FAILED = "dependency_failed"
LEASE_EXPIRED = "lease_expired"


@dataclass(frozen=True)
class ClaimInputs:
    """What the claim read with a task for its call, in the claim's own statement."""

    prompt_external_id: str | None
    prompt_text: str | None
    model_name: str | None
    """Of a generate task."""
    judge_name: str | None
    """Of a judge task."""
    stored: bool
    """The task's result exists already (another run made it since this one was planned)."""


@dataclass(frozen=True)
class ClaimedTask:
    id: int
    run_id: int
    stage: Stage
    prompt_id: int | None
    model_id: int | None
    generation_key: str | None
    annotator_id: int | None
    presentation_key: str | None
    order_index: int | None
    attempts: int
    max_attempts: int
    inputs: ClaimInputs | None = field(default=None, compare=False, repr=False)
    """Set by a claim; not part of the task's identity."""


@dataclass(frozen=True)
class Failure:
    error_type: str
    message: str
    transient: bool


class TaskFailed(Exception):
    """Raised by a stage's code to fail the task it works on, transiently or for good."""

    def __init__(self, error_type: str, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.failure = Failure(error_type, message, transient)


@dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff between attempts, with jitter so retries do not stampede."""

    base_seconds: float = 2.0
    max_seconds: float = 300.0
    jitter: bool = True

    def delay(self, attempts: int) -> float:
        """Seconds to wait after failed attempt number ``attempts`` (1-based)."""
        ceiling = min(self.max_seconds, self.base_seconds * 2.0 ** min(attempts - 1, 60))
        # "Equal jitter": never less than half the ceiling, so backoff still grows.
        return ceiling * (0.5 + random.random() / 2) if self.jitter else ceiling


class Lease(StrEnum):
    RENEWED = "renewed"
    LOST = "lost"
    """Another worker holds the task now (ours expired), or it is no longer running."""
    CANCELLED = "cancelled"
    """The run was cancelled: the task was abandoned and must stop."""


@dataclass(frozen=True)
class Completion:
    """A finished task: ``reused`` when its result existed already, and what to keep on it."""

    task_id: int
    result: dict[str, Any] | None = None
    reused: bool = False
