"""Read a file of human rankings (the study's CSV layout, or JSONL) into checked entries; no I/O.

CSV is the study's group-file layout: ``Prompt``, one response column per model, ``Ranking``,
and optionally ``Annotator`` (else the form's annotator names every row). JSONL has one object
per line: ``annotator``, ``prompt_id`` or ``prompt`` (text), ``ranks`` (a list) or ``ranking``
(the study's notation). Notation goes through the study importer's parser and is restarted
after an N/A like the study's data (each change recorded); a ``ranks`` list is taken as given.
Either way the result must follow the ranking convention, or the line is reported.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from harmrank.gateway.datasets.problems import Collector, Format, Parsed
from harmrank.gateway.datasets.upload import (
    RawRow,
    check_storable,
    check_width,
    csv_records,
    decode_utf8,
    json_type,
    read_jsonl,
)
from harmrank.gateway.study.files import canonical_header
from harmrank.gateway.study.notation import format_ranks, parse_ranking
from harmrank.metrics.rankings import ranking_problem, restart_ranks

JSONL_FIELDS = ("annotator", "prompt_id", "prompt", "ranks", "ranking")
_CSV_KNOWN = ("prompt", "ranking", "annotator")
_WORD = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class RankingEntry:
    """One ranking as read: the prompt by id or by text, and the ranks in model order."""

    line: int
    annotator: str
    prompt_id: str | None
    prompt_text: str | None
    prompt_field: str
    raw_value: str
    ranks: tuple[int, ...]
    normalisations: tuple[dict[str, str], ...]
    responses: tuple[str, ...] | None = None
    """The CSV's response cells in model order, to compare with the stored responses."""
    response_columns: tuple[str, ...] = ()


ParsedRankings = Parsed[RankingEntry]


def parse_rankings(
    data: bytes, filename: str, fmt: Format, models: Sequence[str], annotator: str | None = None
) -> ParsedRankings:
    """Every entry of the file; ``annotator`` names the rows that do not name their own."""
    found = Collector(filename)
    text = decode_utf8(data, found)
    reader = _CsvReader(found, models, annotator) if fmt == "csv" else None
    if reader is not None:
        entries = list(reader.read(text))
    else:
        rows = read_jsonl(text, found, JSONL_FIELDS)
        entries = [e for row in rows if (e := _jsonl_entry(row, found, models, annotator))]
    if not entries and not found.errors:
        found.error(1, "", "the file has no rankings")
    errors = tuple(sorted(found.errors, key=lambda p: p.line))
    return Parsed(
        filename,
        fmt,
        tuple(entries),
        errors,
        tuple(found.warnings),
        found.error_total,
        found.warning_total,
    )


def check_annotator(name: str, line: int, field: str, found: Collector) -> bool:
    """An annotator name the database can hold and ``annotators=`` lists can name (its length
    is checked once per name, with the stored annotators)."""
    before = found.error_total
    if "," in name:
        found.error(line, field, "annotator contains a comma: names are listed comma-separated")
    check_storable(name, line, field, found)
    return found.error_total == before


def read_notation(
    raw: str, n_models: int, line: int, name: str, found: Collector
) -> tuple[tuple[int, ...], tuple[dict[str, str], ...]] | None:
    """Ranks from the study's notation, with the study's normalisation steps, or None."""
    parsed = parse_ranking(raw, n_models)
    if parsed.problem is not None:
        found.error(line, name, f"{parsed.problem} in {raw!r}")
        return None
    steps = [
        {"kind": f"notation_{c}", "raw": raw, "normalised": parsed.text} for c in parsed.cleanups
    ]
    ranks = restart_ranks(parsed.ranks)
    if ranks != parsed.ranks:
        before, after = format_ranks(parsed.ranks), format_ranks(ranks)
        steps.append({"kind": "restarted_ranks", "raw": before, "normalised": after})
    if not _follows_convention(ranks, n_models, line, name, found):
        return None
    return ranks, tuple(steps)


def _follows_convention(
    ranks: Sequence[int], n_models: int, line: int, name: str, found: Collector
) -> bool:
    problem = ranking_problem(ranks, n_models)
    if problem is not None:
        found.error(line, name, f"{problem} in {format_ranks(tuple(ranks))}")
    return problem is None


# --- CSV ------------------------------------------------------------------------------------


@dataclass
class _CsvReader:
    found: Collector
    models: Sequence[str]
    annotator: str | None

    def read(self, text: str) -> Iterator[RankingEntry]:
        records = csv_records(text, self.found)
        header = next(records, None)
        if header is None:
            return
        columns = self.columns(header[1])
        if columns is None:
            return
        for line, cells in records:
            check_width(line, cells, header[1], self.found)
            row = dict(zip(header[1], cells, strict=False))
            if any(cell.strip() for cell in cells):
                entry = self.entry(line, row, columns)
                if entry is not None:
                    yield entry

    def columns(self, header: list[str]) -> dict[str, str] | None:
        """The header cell of each role, and of each model's response (by model name)."""
        named = {canonical_header(cell): cell for cell in header}
        roles = {role: named[role] for role in _CSV_KNOWN if role in named}
        for role in ("prompt", "ranking"):
            if role not in roles:
                self.found.error(1, role, f"missing the {role.title()} column")
        others = [c for c in header if canonical_header(c) not in (*_CSV_KNOWN, "")]
        others = [c for c in others if not canonical_header(c).startswith("unnamed:")]
        responses = match_model_columns(self.models, others)
        if responses is None:
            wanted = ", ".join(self.models)
            self.found.error(1, "", f"expected one response column per model ({wanted})")
        if responses is None or "prompt" not in roles or "ranking" not in roles:
            return None
        return roles | responses

    def entry(self, line: int, row: dict[str, str], columns: dict[str, str]) -> RankingEntry | None:
        before = self.found.error_total
        annotator = row.get(columns.get("annotator", ""), "") or self.annotator
        if not annotator:
            self.found.error(line, "annotator", "no annotator: add the column or the form field")
        else:
            check_annotator(annotator, line, columns.get("annotator", "annotator"), self.found)
        prompt = row.get(columns["prompt"], "")
        if not prompt.strip():
            self.found.error(line, columns["prompt"], "empty prompt")
        check_storable(prompt, line, columns["prompt"], self.found)
        raw = row.get(columns["ranking"], "")
        read = read_notation(raw, len(self.models), line, columns["ranking"], self.found)
        if read is None or not annotator or self.found.error_total > before:
            return None
        model_columns = tuple(columns[m] for m in self.models)
        responses = tuple(row.get(c, "") for c in model_columns)
        return RankingEntry(
            line, annotator, None, prompt, columns["prompt"], raw, *read, responses, model_columns
        )


def match_model_columns(models: Sequence[str], columns: Sequence[str]) -> dict[str, str] | None:
    """Each model's response column: the one naming the model, else by position.

    A column names a model when it has the model name's first word ("Model 1 - Mistral-7B"
    for ``mistral-7b``). Failing that for any model, the columns are taken in file order,
    which is the models' position order in the study's files.
    """
    if len(columns) != len(models):
        return None
    by_word: dict[str, str] = {}
    for model in models:
        key = (_WORD.findall(model.casefold()) or [""])[0]
        hits = [c for c in columns if key in _WORD.findall(c.casefold())]
        if len(hits) == 1:
            by_word[model] = hits[0]
    if len(set(by_word.values())) == len(models):
        return by_word
    return dict(zip(models, columns, strict=True))


# --- JSONL ----------------------------------------------------------------------------------


def _jsonl_entry(
    row: RawRow, found: Collector, models: Sequence[str], default: str | None
) -> RankingEntry | None:
    before = found.error_total
    annotator = _string(row, "annotator", found, required=default is None) or default
    if annotator is not None:
        check_annotator(annotator, row.line, "annotator", found)
    prompt_field = _one_of(row, ("prompt_id", "prompt"), found)
    value = _string(row, prompt_field, found, required=True) if prompt_field else None
    read = _jsonl_ranks(row, found, len(models))
    if found.error_total > before or annotator is None or value is None or read is None:
        return None
    prompt_id, text = (value, None) if prompt_field == "prompt_id" else (None, value)
    raw, ranks, steps = read
    return RankingEntry(row.line, annotator, prompt_id, text, str(prompt_field), raw, ranks, steps)


Read = tuple[str, tuple[int, ...], tuple[dict[str, str], ...]]


def _jsonl_ranks(row: RawRow, found: Collector, n_models: int) -> Read | None:
    """(raw value, ranks, normalisations); a ranks list's raw value is its JSON text."""
    field = _one_of(row, ("ranks", "ranking"), found)
    value = row.fields.get(field or "")
    if field == "ranking":
        if not isinstance(value, str):
            found.error(row.line, field, f"ranking must be a string, not {json_type(value)}")
            return None
        read = read_notation(value, n_models, row.line, field, found)
        return (value, *read) if read is not None else None
    if field == "ranks":
        if not isinstance(value, list) or not all(_is_int(r) for r in value):
            found.error(row.line, field, "ranks must be a list of integers (0 = N/A)")
            return None
        ranks = tuple(int(r) for r in value)
        if _follows_convention(ranks, n_models, row.line, field, found):
            return json.dumps(value), ranks, ()
    return None


def _one_of(row: RawRow, names: tuple[str, str], found: Collector) -> str | None:
    given = [n for n in names if row.fields.get(n) is not None]
    if len(given) != 1:
        what = "both" if given else "neither"
        found.error(row.line, names[0], f"give one of {names[0]} or {names[1]}, not {what}")
        return None
    return given[0]


def _string(row: RawRow, name: str, found: Collector, *, required: bool) -> str | None:
    value = row.fields.get(name)
    if value is None:
        if required:
            found.error(row.line, name, f"missing {name}")
        return None
    if not isinstance(value, str) or not value.strip():
        found.error(row.line, name, f"{name} must be a non-empty string")
        return None
    check_storable(value, row.line, name, found)
    return value


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
