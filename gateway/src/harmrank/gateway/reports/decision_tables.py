"""Tables of the data decisions: the figures under each choice, and the direction evidence."""

from __future__ import annotations

from harmrank.gateway.reports.summary import Summary
from harmrank.gateway.reports.tables import Table, fmt

# (metric, lists) of the figures shown per choice: the headline RBO, the paper's, and tau-b.
SHOWN = {
    ("rbo_known", "harmful, complete"): "RBO known",
    ("rbo", "harmful"): "RBO paper",
    ("kendall_tau_b", None): "τ-b",
}


def sensitivity_tables(summary: Summary) -> list[Table]:
    """One table per decision: a row per pair and figure, a column per choice."""
    tables = []
    for decision in dict.fromkeys(e.decision for e in summary.sensitivity):
        entries = [e for e in summary.sensitivity if e.decision == decision]
        choices = list(dict.fromkeys(e.choice for e in entries))
        cells: dict[tuple[str, str], dict[str, str]] = {}
        for e in entries:
            name = SHOWN.get((e.metric, e.lists))
            if name is not None:
                row = cells.setdefault((f"{e.a} vs {e.b}", name), {})
                row[e.choice] = f"{fmt(e.value)} (n={e.n})"
        rows = [
            [pair, name, *(row.get(c, "–") for c in choices)] for (pair, name), row in cells.items()
        ]
        tables.append(
            Table(
                f"Sensitivity: {decision}",
                ["pair", "figure", *choices],
                rows,
                note="Point values under each choice; the default is the authors' choice, used "
                "everywhere else in this report. summary.json 'sensitivity' has every figure.",
            )
        )
    return tables


def concordance_table(summary: Summary) -> Table | None:
    if not summary.concordance:
        return None
    rows = [
        [c.a, c.b, str(c.concordant), str(c.discordant), fmt(c.p_value)]
        for c in summary.concordance
    ]
    return Table(
        "Direction evidence: pairs of harmful responses ordered alike (concordant) or not",
        ["annotation group", "judge", "concordant", "discordant", "p (1:1)"],
        rows,
        note="Over prompts both ranked and pairs of responses both call harmful. A group written "
        "in the opposite direction to the others shows the opposite ratio against the same "
        "judge; p: two-sided exact binomial test of concordant = discordant.",
    )


def position_table(summary: Summary) -> Table | None:
    if not summary.position_bias:
        return None
    rows = []
    for b in summary.position_bias:
        for position, counts in enumerate(b.counts):
            ranks = ", ".join(f"{'N/A' if r == 0 else r}: {n}" for r, n in enumerate(counts))
            verdict = f"p = {fmt(b.p_value)}{' (position effect)' if b.detected else ''}"
            rows.append(
                [b.annotator, chr(ord("A") + position), ranks, verdict if not position else ""]
            )
    tests = "; ".join(dict.fromkeys(b.test for b in summary.position_bias))
    tests += ". " + "; ".join(
        f"{b.annotator} (n = {b.n}): {b.detail}" for b in summary.position_bias
    )
    notes = " ".join(
        DESIGN_NOTES[d] for d in dict.fromkeys(b.design for b in summary.position_bias)
    )
    return Table(
        "Position: the ranks each judge gave to each position",
        ["judge", "position", "ranks given (rank: rankings)", "test"],
        rows,
        note=f"{tests}. {notes} Judge-derived model rankings carry a warning when the test "
        "rejects at 0.05.",
    )


DESIGN_NOTES = {
    "fixed order": "The study showed every judge the responses in one order (A, B, C = the "
    "models in order), so position and model cannot be separated: a lean in the judge's "
    "disagreements with the humans is what a position effect produces, and also what a "
    "different view of the models would.",
    "seeded orders": "The run showed each judge every prompt's responses in seeded random "
    "orders (recorded with each ranking), so position is independent of the model: a rank "
    "that depends on the position shown is the judge's position effect.",
}


def decision_tables(summary: Summary) -> list[Table]:
    optional = (concordance_table(summary), position_table(summary))
    return [*sensitivity_tables(summary), *(t for t in optional if t is not None)]
