"""Links from a report's figures to the explorer, filtered to the samples behind each one.

Kept apart from the tables so the report's layout can change without touching what each
figure means in explorer filters:

- an agreement cell of pair (a, b) → the prompts where a and b do not agree by that measure
  (RBO below 1 on the cell's lists and p; not identical rankings; one harmful, the other not);
- a win or loss count (and the win rate) of "model vs other" → the prompts where the annotator
  ranked the winner less harmful than the loser;
- a rank-histogram bar (annotator, model, rank) → the prompts where it gave the model that rank.

The judges' jury is computed by the report from its jurors and never stored, so the explorer has
no column for it: its figures get no link.
"""

from __future__ import annotations

from urllib.parse import urlencode

from harmrank.gateway.reports.summary import Summary
from harmrank.gateway.reports.tables import AGREEMENT_COLUMNS, _pairs, agreement_table
from harmrank.metrics.jury import JURY_NAME

Cells = dict[tuple[int, int], str]
FIRST_METRIC_COLUMN = 2  # after "pair" and "prompts"


def _href(base: str, **params: object) -> str:
    joiner = "&" if "?" in base else "?"
    return base + joiner + urlencode({k: v for k, v in params.items() if v is not None})


def _agreement_params(metric: str, lists: str | None, p: float) -> dict[str, object]:
    if metric == "rbo":
        return {"agreement": "rbo_below", "rbo_below": 1, "lists": lists, "p": p}
    if metric == "f1_harmful":
        return {"agreement": "harm_split"}
    return {"agreement": "differ"}


def _stored(summary: Summary, annotator: str) -> bool:
    return not (summary.jury and annotator == JURY_NAME)


def agreement_links(summary: Summary, base: str) -> Cells:
    links: Cells = {}
    p = float(summary.settings.get("p", 0.9))
    for row, (a, b) in enumerate(_pairs(summary)):
        if not (_stored(summary, a) and _stored(summary, b)):
            continue
        for offset, (metric, lists, _) in enumerate(AGREEMENT_COLUMNS):
            params = _agreement_params(metric, lists, p)
            links[(row, FIRST_METRIC_COLUMN + offset)] = _href(base, a=a, b=b, **params)
    return links


def wins_links(summary: Summary, annotator: str, base: str) -> Cells:
    """The rows of ``wins_table``: wins, losses and the win rate of each pair."""
    links: Cells = {}
    row = 0
    for model, opponents in summary.pairwise_wins[annotator].items():
        for other in opponents:
            if summary.models.index(model) < summary.models.index(other):
                won = _href(base, a=annotator, model=model, beats=other)
                links[(row, 1)] = links[(row, 4)] = won
                links[(row, 2)] = _href(base, a=annotator, model=other, beats=model)
                row += 1
    return links


def table_links(summary: Summary, base: str | None) -> dict[str, Cells]:
    """Per table title, the cells that link to the explorer (none without an explorer)."""
    if base is None:
        return {}
    links = {agreement_table(summary).title: agreement_links(summary, base)}
    for annotator in filter(lambda a: _stored(summary, a), summary.pairwise_wins):
        links[f"Pairwise wins, least harm ({annotator})"] = wins_links(summary, annotator, base)
    return links


def histogram_links(summary: Summary, base: str | None) -> list[tuple[str, list[tuple[str, str]]]]:
    """Per (annotator, model), a link per rank: the bars of the rank histograms."""
    if base is None:
        return []
    ranks = range(len(summary.models) + 1)
    return [
        (
            f"{annotator}: {model}",
            [
                ("N/A" if r == 0 else str(r), _href(base, a=annotator, model=model, rank=r))
                for r in ranks
            ],
        )
        for annotator in summary.annotators
        if _stored(summary, annotator)
        for model in summary.models
    ]
