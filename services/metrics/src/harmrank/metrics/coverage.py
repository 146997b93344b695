"""What a run's report is missing: judges that ranked fewer prompts than they were asked to,
and the tasks that failed for good (per model or judge, with the first error).

The caller (the gateway's score task) knows what was asked for; the report states it as
figures (``coverage``, ``failures``) and as the first of its findings, so a judge that produced
nothing is never silently left out of a comparison.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from harmrank.metrics.findings import Finding
from harmrank.metrics.position import Presented
from harmrank.metrics.rankings import AnnotatorRankings

Stage = Literal["generate", "judge"]


@dataclass(frozen=True)
class TaskFailures:
    """The tasks of one model (generate) or one judge (judge) that failed for good."""

    stage: Stage
    name: str
    failed: int
    first_error: str


@dataclass(frozen=True)
class Coverage:
    """An annotator asked to rank ``expected`` prompts that ranked ``ranked`` of them."""

    annotator: str
    expected: int
    ranked: int
    missing: int


@dataclass(frozen=True)
class RunFacts:
    """What a run asked for and how it went, beside the rankings it produced."""

    expected: Mapping[str, int] = field(default_factory=dict)
    """Annotator -> prompts it was asked to rank (a judge that ranked none is listed too)."""
    failures: Sequence[TaskFailures] = ()
    presented: Sequence[Presented] = ()
    """The judges' rankings as shown, one per presentation order: the position-bias input."""


def coverage(
    annotators: Sequence[AnnotatorRankings], expected: Mapping[str, int]
) -> list[Coverage]:
    ranked = {a.annotator: len(a.prompts) for a in annotators}
    return [
        Coverage(name, n, ranked.get(name, 0), max(0, n - ranked.get(name, 0)))
        for name, n in expected.items()
    ]


def _failed(failures: Sequence[TaskFailures], stage: Stage, name: str) -> TaskFailures | None:
    return next((f for f in failures if f.stage == stage and f.name == name), None)


def _failure_text(f: TaskFailures, what: str) -> str:
    tasks = "task" if f.failed == 1 else "tasks"
    return f"{f.failed} {what} {tasks} failed for good (first error: {f.first_error})"


def coverage_findings(
    covered: Sequence[Coverage], failures: Sequence[TaskFailures]
) -> list[Finding]:
    """A sentence per judge that ranked fewer prompts than asked or had tasks fail, then per
    model whose responses could not all be generated."""
    out = [
        found
        for c in covered
        if (found := _judge_finding(c, _failed(failures, "judge", c.annotator))) is not None
    ]
    for f in failures:
        if f.stage == "generate":
            text = (
                f"{f.name}: {_failure_text(f, 'generate')}; the judges did not rank the prompts "
                "left without its response."
            )
            out.append(Finding(text, (f"failures.generate.{f.name}",)))
    return out


def _judge_finding(c: Coverage, failed: TaskFailures | None) -> Finding | None:
    why = f"; {_failure_text(failed, 'judge')}" if failed else ""
    if c.ranked == 0 and c.expected > 0:
        text = (
            f"{c.annotator} produced no rankings: 0 of {c.expected} prompts ranked{why}. "
            "It is absent from every figure; the other annotators are compared without it."
        )
    elif c.missing:
        text = (
            f"{c.annotator} ranked {c.ranked} of {c.expected} prompts ({c.missing} missing{why}): "
            "its figures cover only the prompts it ranked."
        )
    elif failed:
        text = (
            f"{c.annotator} ranked all {c.expected} prompts, but {_failure_text(failed, 'judge')}"
            ": some prompts rest on fewer presentation orders than asked."
        )
    else:
        return None
    failures = (f"failures.judge.{c.annotator}",) if failed else ()
    return Finding(text, (f"coverage.{c.annotator}", *failures))
