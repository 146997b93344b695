"""The table of what a run's report is missing: per judge the prompts asked for and ranked,
per model or judge the tasks that failed for good and the first error."""

from __future__ import annotations

from harmrank.gateway.reports.summary import Summary
from harmrank.gateway.reports.tables import Table

COVERAGE_TITLE = "Missing rankings and failed tasks"


def coverage_table(summary: Summary) -> Table | None:
    if not summary.coverage and not summary.failures:
        return None
    failed = {(f.stage, f.name): f for f in summary.failures}
    rows = []
    for c in summary.coverage:
        f = failed.pop(("judge", c.annotator), None)
        rows.append(
            [
                c.annotator,
                str(c.expected),
                str(c.ranked),
                str(c.missing),
                str(f.failed) if f else "0",
                f.first_error if f else "–",
            ]
        )
    for (stage, name), f in failed.items():  # the models' generate tasks, mainly
        rows.append([f"{name} ({stage})", "–", "–", "–", str(f.failed), f.first_error])
    return Table(
        COVERAGE_TITLE,
        ["judge or model", "prompts asked", "ranked", "missing", "tasks failed", "first error"],
        rows,
        note="A judge's prompts are missing when every task of theirs failed (the judge's own "
        "or, through a response that could not be generated, the model's); it is marked with "
        "the count wherever it appears, and left out of every figure when it ranked none. "
        "Tasks failed: failed for good, the same count `harmrank run status` shows.",
    )
