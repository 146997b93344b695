"""The headline tables, built once from the summary and shown by the terminal, HTML and Markdown."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from harmrank.gateway.reports.summary import AgreementEntry, Summary
from harmrank.metrics.aggregate_humans import GROUP_TEXT, GROUPS, ReferenceSummary
from harmrank.metrics.findings import number
from harmrank.metrics.paired import DEFINITION as PAIRED_DEFINITION

HEADLINE_METRICS = ("rbo_known", "kendall_tau_b")
HARM_STRENGTH_TITLE = "Bradley–Terry harm strength (higher = more harmful; sums to 1)"

AGREEMENT_COLUMNS = (
    ("rbo_known", None, "RBO known depth (headline)"),
    ("rbo", "harmful", "RBO_ext harmful lists (paper)"),
    ("rbo", "tied", "RBO tied lists"),
    ("exact_match", None, "exact match"),
    ("kendall_tau_b", None, "Kendall τ-b"),
    ("krippendorff_alpha", None, "Krippendorff α"),
    ("f1_harmful", None, "F1 harmful"),
)


@dataclass(frozen=True)
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]]
    note: str = ""


def fmt(value: float | None, digits: int = 3) -> str:
    """A figure for reading: "–" when undefined, and never a signed zero ("-0.000")."""
    return "–" if value is None else number(value, digits)


def _ci(low: float | None, high: float | None) -> str:
    return f" [{fmt(low, 2)}, {fmt(high, 2)}]" if low is not None else ""


def _interval(entry: AgreementEntry) -> str:
    """Value [CI], and the figure's own n when it leaves shared prompts out."""
    n = f" n={entry.n}" if entry.n != entry.n_shared else ""
    return f"{fmt(entry.value)}{_ci(entry.ci_low, entry.ci_high)}{n}"


def _chance(entry: AgreementEntry) -> str:
    return fmt(entry.chance)


def _corrected(entry: AgreementEntry) -> str:
    cc = entry.chance_corrected
    return f"{fmt(cc.value)}{_ci(cc.ci_low, cc.ci_high)}"


def per_model_table(
    title: str, values: dict[str, dict[str, float | None]], summary: Summary
) -> Table:
    rows = [
        [summary.label(name), *(fmt(by_model[m]) for m in summary.models)]
        for name, by_model in values.items()
    ]
    return Table(title, ["annotator", *summary.models], rows)


def wins_table(summary: Summary, annotator: str) -> Table:
    rows = []
    for model, opponents in summary.pairwise_wins[annotator].items():
        for other, o in opponents.items():
            if summary.models.index(model) < summary.models.index(other):
                rate = f"{fmt(o.win_rate)} [{fmt(o.ci_low, 2)}, {fmt(o.ci_high, 2)}]"
                rows.append([f"{model} vs {other}", str(o.wins), str(o.losses), str(o.ties), rate])
    return Table(
        f"Pairwise wins, least harm ({summary.label(annotator)})",
        ["pair", "wins", "losses", "ties", "win rate [CI]"],
        rows,
        note=summary.conventions["wins"],
    )


def _lookup(entries: list[AgreementEntry], metric: str, lists: str | None) -> AgreementEntry | None:
    for entry in entries:
        if entry.metric == metric and (lists is None or entry.params.get("lists") == lists):
            return entry
    return None


def _pairs(summary: Summary) -> dict[tuple[str, str], list[AgreementEntry]]:
    pairs: dict[tuple[str, str], list[AgreementEntry]] = {}
    for entry in summary.agreement:
        if entry.category is None:
            pairs.setdefault((entry.a, entry.b), []).append(entry)
    return pairs


def _agreement_rows(summary: Summary, cell: Callable[[AgreementEntry], str]) -> list[list[str]]:
    rows = []
    for (a, b), entries in _pairs(summary).items():
        cells = [_lookup(entries, metric, lists) for metric, lists, _ in AGREEMENT_COLUMNS]
        shared = str(entries[0].n_shared)
        pair = f"{summary.label(a)} vs {summary.label(b)}"
        rows.append([pair, shared, *(cell(c) if c else "–" for c in cells)])
    return rows


def agreement_table(summary: Summary) -> Table:
    return Table(
        f"Agreement (value [{summary.settings['confidence']:.0%} CI])",
        ["pair (a vs reference b)", "prompts", *(label for _, _, label in AGREEMENT_COLUMNS)],
        _agreement_rows(summary, _interval),
        note=f"Prompts: both annotators ranked them; a figure computed over fewer says its own n "
        f"({_dropped(summary)}). Headline RBO: {summary.conventions['rbo_headline']} "
        f"Paper's RBO: {summary.conventions['rbo_paper']}. {summary.conventions['rbo']}. "
        f"Empty lists: {summary.conventions['rbo_empty_lists']}. "
        f"Intervals: {summary.conventions['bootstrap']}.",
    )


def _dropped(summary: Summary) -> str:
    reasons = {e.dropped.split(": ", 1)[1] for e in summary.agreement if e.dropped}
    return "; ".join(sorted(reasons)) or "none here"


def corrected_table(summary: Summary) -> Table:
    return Table(
        "Chance-corrected agreement",
        ["pair (a vs reference b)", "prompts", *(label for _, _, label in AGREEMENT_COLUMNS)],
        _agreement_rows(summary, _corrected),
        note=summary.conventions["chance_corrected"] + ".",
    )


def interval_table(summary: Summary) -> Table | None:
    """The clustered interval of the headline figures beside the prompt-level one."""
    rows = [
        [
            f"{e.a} vs {e.b}",
            e.metric,
            fmt(e.value),
            _ci(e.ci_low, e.ci_high).strip(),
            _ci(e.prompt_ci_low, e.prompt_ci_high).strip(),
        ]
        for e in summary.agreement
        if e.category is None and e.metric in HEADLINE_METRICS and e.prompt_ci_low is not None
    ]
    if not rows:
        return None
    return Table(
        "Intervals: resampling clusters against resampling prompts",
        ["pair", "figure", "value", "clustered CI", "prompt-level CI"],
        rows,
        note=summary.conventions["bootstrap"] + ".",
    )


def paired_table(summary: Summary) -> Table | None:
    rows = [
        [
            " − ".join("~".join(p) for p in (d.x, d.y)),
            d.metric,
            fmt(d.difference),
            _ci(d.ci_low, d.ci_high).strip(),
            str(d.n),
        ]
        for d in summary.paired
    ]
    if not rows:
        return None
    return Table(
        "Paired comparisons: agreement with each other against agreement with the reference",
        ["x − y", "figure", "difference", "CI", "prompts"],
        rows,
        note=PAIRED_DEFINITION + ".",
    )


def chance_table(summary: Summary) -> Table:
    return Table(
        "Agreement expected by chance",
        ["pair (a vs reference b)", "prompts", *(label for _, _, label in AGREEMENT_COLUMNS)],
        _agreement_rows(summary, _chance),
        note=summary.conventions["chance"] + ".",
    )


REFERENCE_TITLE = "The human reference"
BY_GROUP_TITLE = "Against the human reference, by how much the humans agreed on the item"


def _listed(names: list[str], limit: int = 12) -> str:
    more = f", … ({len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def reference_table(summary: Summary, ref: ReferenceSummary) -> Table:
    """How the human reference was made, and how much the humans agreed among themselves."""
    alpha, pooled = ref.krippendorff_alpha, ref.pairwise_exact_pooled
    alpha_value = alpha["value"]
    pooled_value = pooled["value"]
    ties = [str(t["prompt_id"]) for t in ref.ties]
    rows = [
        ["annotator", ref.name],
        ["humans aggregated", f"{len(ref.humans)}: {_listed(list(ref.humans))}"],
        ["items ranked by them", str(ref.n_items)],
        ["items in the reference", str(ref.n_reference_items)],
        [
            "items by number of human annotators",
            ", ".join(f"{k}: {v}" for k, v in ref.items_by_annotator_count.items()),
        ],
        ["how much the humans agreed", ", ".join(f"{g}: {n}" for g, n in ref.groups.items())],
        ["ties (left out)", f"{ref.n_ties}" + (f": {_listed(ties)}" if ties else "")],
        ["below min_annotators (left out)", str(ref.n_below_min_annotators)],
        [
            "Krippendorff α among the humans (ordinal)",
            fmt(alpha_value if isinstance(alpha_value, float) else None),
        ],
        [
            "pairwise exact agreement among the humans",
            f"{fmt(pooled_value if isinstance(pooled_value, float) else None)} "
            f"over {pooled['n_items']} items with two or more annotators",
        ],
        ["note", ref.note],
    ]
    note = summary.conventions.get("human_reference", "")
    return Table(REFERENCE_TITLE, ["what", "value"], rows, note=note)


def by_group_table(summary: Summary, ref: ReferenceSummary) -> Table | None:
    """Each annotator against the reference: all items, then per agreement group."""
    rows = []
    for (a, b), categories in _reference_entries(summary, ref.name).items():
        for category in (None, *GROUPS):
            entries = categories.get(category)
            if not entries:
                continue
            cells = [_lookup(entries, metric, lists) for metric, lists, _ in AGREEMENT_COLUMNS]
            chance = cells[0]
            rows.append(
                [
                    f"{a} vs {b}",
                    category or "all items",
                    str(max(e.n for e in entries)),
                    *(_interval(c) if c else "–" for c in cells),
                    _chance(chance) if chance else "–",
                ]
            )
    if not rows:
        return None
    labels = [label for _, _, label in AGREEMENT_COLUMNS]
    return Table(
        BY_GROUP_TITLE,
        [
            "pair (a vs reference b)",
            "humans on the item",
            "prompts",
            *labels,
            "chance RBO (harmful)",
        ],
        rows,
        note="; ".join(f"{g}: {t}" for g, t in GROUP_TEXT.items())
        + f". Value [{summary.settings['confidence']:.0%} CI], intervals resampled within each "
        "group.",
    )


def _reference_entries(
    summary: Summary, name: str
) -> dict[tuple[str, str], dict[str | None, list[AgreementEntry]]]:
    """Entries against the reference, by pair, then by category (None: all items)."""
    pairs: dict[tuple[str, str], dict[str | None, list[AgreementEntry]]] = {}
    for entry in summary.agreement:
        if entry.b == name:
            by_category = pairs.setdefault((entry.a, entry.b), {})
            by_category.setdefault(entry.category, []).append(entry)
    return pairs


def reference_tables(summary: Summary, ref: ReferenceSummary | None) -> list[Table]:
    if ref is None:
        return []
    by_group = by_group_table(summary, ref)
    return [reference_table(summary, ref), *([by_group] if by_group else [])]


def headline_tables(summary: Summary, reference: ReferenceSummary | None = None) -> list[Table]:
    return [
        per_model_table("N/A (not harmful) rate", summary.na_rate, summary),
        per_model_table("Most-harmful share", summary.most_harmful_share, summary),
        *reference_tables(summary, reference),
        agreement_table(summary),
        chance_table(summary),
        corrected_table(summary),
        *[t for t in (interval_table(summary), paired_table(summary)) if t is not None],
    ]


def all_tables(summary: Summary, reference: ReferenceSummary | None = None) -> list[Table]:
    harm: dict[str, dict[str, float | None]] = {
        n: dict(s) for n, s in summary.harm_strength.items()
    }
    return [
        *headline_tables(summary, reference),
        per_model_table(HARM_STRENGTH_TITLE, harm, summary),
        *(wins_table(summary, name) for name in summary.annotators),
    ]


def terminal_table(summary: Summary) -> Table:
    """The headline agreement in a long format that stays readable at 80 columns."""
    rows = [
        [
            f"{e.a}~{e.b}",
            TERMINAL_NAMES[e.metric, e.params.get("lists")],
            _interval(e),
            fmt(e.chance),
            fmt(e.chance_corrected.value),
        ]
        for e in summary.agreement
        if e.category is None and (e.metric, e.params.get("lists")) in TERMINAL_NAMES
    ]
    return Table(
        "Agreement (95% CI; n when fewer than the shared prompts)",
        ["pair", "figure", "value [CI]", "chance", "corrected"],
        rows,
        note="RBO known = the headline RBO (a missing model is known N/A); RBO paper = RBO_ext "
        "on harmful lists, which scores a list that starts the other 1.0. Full tables in the "
        "report.",
    )


TERMINAL_NAMES = {
    ("rbo_known", "harmful, complete"): "RBO known",
    ("rbo", "harmful"): "RBO paper",
    ("kendall_tau_b", None): "τ-b",
}
