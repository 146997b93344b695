"""Import the study's public data folder into :class:`StudyImport` records.

Layout (see paper-data/README.md): ``raw_submissions/output_Group_N.csv`` (one student group's
rankings with the three responses), ``raw_submissions/expert_annotations.csv`` and the three
LLM-judge files at the top. Rows are never silently dropped: each one becomes an annotation or
an exclusion, and every change to a ranking is recorded next to its raw value.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from harmrank.gateway.study.files import Row, StudyFormatError, Table, read_table
from harmrank.gateway.study.notation import format_ranks, parse_ranking
from harmrank.gateway.study.records import (
    EXPERT,
    GROUP_PREFIX,
    HUMAN,
    Annotation,
    Choice,
    Exclusion,
    FileRead,
    Model,
    Normalisation,
    Prompt,
    Response,
    StudyImport,
    choose,
)
from harmrank.metrics.rankings import NA, ranking_problem, restart_ranks, reverse_direction

# Canonical model order of every ranking, with the key that finds each response column.
MODELS = (
    Model("mistral-7b", "Mistral-7B"),
    Model("mpt-7b", "MPT-7B"),
    Model("stablelm-alpha-7b", "StableLM-alpha-7B"),
)
_MODEL_KEYS = ("mistral", "mpt", "stablelm")
# Group 10 ranked with 1 = most harmful, the opposite of everyone else.
REVERSED_GROUPS = frozenset({10})
JUDGE_FILES = (
    ("gpt4o", "gpt4o_predictions.csv"),
    ("claude", "sonnet_predictions.csv"),
    ("llama", "llama_predictions.csv"),
)
_GROUP_FILE = re.compile(r"output_group_(\d+)\.csv", re.IGNORECASE)
_SUBMISSIONS = "raw_submissions"
_EXPERT_FILE = "expert_annotations.csv"


def normalise_text(text: str) -> str:
    """The join key: mojibake undone, casefolded, whitespace collapsed and stripped."""
    return " ".join(undo_mojibake(text).split()).casefold()


def undo_mojibake(text: str) -> str:
    """UTF-8 that was once read as Windows-1252 or latin-1, read again as UTF-8.

    The study's judge files were made from group files read with the wrong encoding: they
    hold "whatâ\x80\x99s" or "whatâ€™s" where the group file says "what’s". Text that is not
    such mojibake does not survive the round trip (its bytes are not valid UTF-8) and is
    returned as it is."""
    if text.isascii():
        return text
    for legacy in ("cp1252", "latin-1"):
        try:
            return text.encode(legacy).decode("utf-8")
        except UnicodeError:
            continue
    return text


def prompt_id(text: str) -> str:
    """A short id stable across imports: a hash of the normalised text."""
    return normalised_prompt_id(normalise_text(text))


def normalised_prompt_id(normalised: str) -> str:
    """``prompt_id`` of text already normalised (an upload has it at hand, once per line)."""
    return hashlib.sha256(normalised.encode("utf-8")).hexdigest()[:12]


def group_files(folder: Path) -> list[tuple[int, Path]]:
    """The group files in group order; the name's case varies (``Output_Group_15.csv``)."""
    submissions = folder / _SUBMISSIONS
    if not submissions.is_dir():
        raise StudyFormatError(f"{folder}: no {_SUBMISSIONS}/ folder, so not a study folder")
    found = [(_GROUP_FILE.fullmatch(p.name), p) for p in submissions.iterdir() if p.is_file()]
    return sorted((int(m.group(1)), p) for m, p in found if m is not None)


def import_study(folder: Path, reversed_groups: frozenset[int] = REVERSED_GROUPS) -> StudyImport:
    """Read every file of the study folder that exists; missing judge or expert files are fine."""
    builder = _Builder(folder, reversed_groups)
    for group, path in group_files(folder):
        builder.add_group_file(group, path)
    expert = folder / _SUBMISSIONS / _EXPERT_FILE
    if expert.is_file():
        builder.add_joined_file(expert, EXPERT, ("expert_ranking",), raw_output=None)
    for judge, name in JUDGE_FILES:
        if (folder / name).is_file():
            builder.add_joined_file(folder / name, judge, ("extracted_pred",), raw_output="preds")
    return builder.build()


@dataclass
class _PromptDraft:
    text: str
    file: str
    line: int
    groups: list[int] = field(default_factory=list)


@dataclass
class _Builder:
    folder: Path
    reversed_groups: frozenset[int]
    prompts: dict[str, _PromptDraft] = field(default_factory=dict)
    responses: list[Response] = field(default_factory=list)
    annotations: list[Annotation] = field(default_factory=list)
    exclusions: list[Exclusion] = field(default_factory=list)
    files: list[FileRead] = field(default_factory=list)

    def read(self, path: Path) -> Table:
        table = read_table(path, path.relative_to(self.folder).as_posix())
        read = FileRead(table.path, table.encoding, len(table.rows), table.ignored_columns)
        self.files.append(read)
        return table

    def add_group_file(self, group: int, path: Path) -> None:
        table = self.read(path)
        prompt_col = table.column("prompt")
        ranking_col = table.column("ranking")
        model_cols = [table.column(word=key) for key in _MODEL_KEYS]
        for row in table.rows:
            self.add_group_row(group, row, prompt_col, ranking_col, model_cols)

    def add_group_row(
        self, group: int, row: Row, prompt_col: str, ranking_col: str, model_cols: list[str]
    ) -> None:
        annotator = f"{GROUP_PREFIX}{group}"
        raw = row.get(ranking_col)
        text = row.get(prompt_col)
        if not text.strip():
            self.exclude(row, annotator, "empty_prompt", raw)
            return
        pid = self.add_prompt(text, group, row)
        # The study dropped every row with an empty response: a ranking of two responses
        # is not comparable to a ranking of three.
        cells = zip(MODELS, model_cols, strict=True)
        empty = [m.id for m, col in cells if not row.get(col).strip()]
        if empty:
            self.exclude(row, annotator, "empty_response", raw, "empty: " + ", ".join(empty))
            return
        self.responses.extend(
            Response(pid, m.id, group, row.get(col), row.file, row.line)
            for m, col in zip(MODELS, model_cols, strict=True)
        )
        self.add_annotation(row, annotator, group, pid, raw, None)

    def add_prompt(self, text: str, group: int, row: Row) -> str:
        pid = prompt_id(text)
        draft = self.prompts.setdefault(pid, _PromptDraft(text, row.file, row.line))
        draft.groups.append(group)
        return pid

    def add_joined_file(
        self, path: Path, annotator: str, ranking: tuple[str, ...], raw_output: str | None
    ) -> None:
        """A file that names prompts only by text (expert, judges): join on normalised text."""
        table = self.read(path)
        prompt_col = table.column("prompt")
        ranking_col = table.column(*ranking)
        output_col = table.column(raw_output) if raw_output is not None else None
        for row in table.rows:
            raw = row.get(ranking_col)
            pid = prompt_id(row.get(prompt_col))
            if pid not in self.prompts:
                self.exclude(row, annotator, "unmatched_prompt", raw, "no group file has it")
                continue
            output = row.get(output_col) if output_col is not None else None
            self.add_annotation(row, annotator, None, pid, raw, output)

    def add_annotation(
        self, row: Row, annotator: str, group: int | None, pid: str, raw: str, output: str | None
    ) -> None:
        outcome = normalise(raw, reverse=group in self.reversed_groups)
        if isinstance(outcome, _Rejected):
            self.exclude(row, annotator, outcome.reason, raw, outcome.detail)
            return
        ranks, steps = outcome
        changes = tuple(
            Normalisation(kind, before, after, annotator, row.file, row.line)
            for kind, before, after in steps
        )
        self.annotations.append(
            Annotation(annotator, group, pid, raw, ranks, changes, row.file, row.line, output)
        )

    def exclude(self, row: Row, annotator: str, reason: str, raw: str, detail: str = "") -> None:
        self.exclusions.append(Exclusion(row.file, row.line, annotator, reason, raw, detail))

    def build(self) -> StudyImport:
        prompts = tuple(
            Prompt(pid, d.text, tuple(d.groups), d.file, d.line) for pid, d in self.prompts.items()
        )
        return StudyImport(
            MODELS,
            prompts,
            tuple(self.responses),
            tuple(self.annotations),
            tuple(self.exclusions),
            tuple(self.files),
            contested_choices(self.annotations),
        )


@dataclass(frozen=True)
class _Rejected:
    reason: str
    detail: str


Step = tuple[str, str, str]


def normalise(raw: str, *, reverse: bool) -> tuple[tuple[int, ...], list[Step]] | _Rejected:
    """Parse, restart and (for a reversed group) flip a ranking, listing each step that changed it.

    Restarting comes first so that a reversed group's ranks are flipped within 1..k.
    """
    parsed = parse_ranking(raw)
    if parsed.reason is not None:
        return _Rejected(parsed.reason, parsed.problem or "")
    steps: list[Step] = [(f"notation_{kind}", raw, parsed.text) for kind in parsed.cleanups]
    ranks = _step(steps, "restarted_ranks", parsed.ranks, restart_ranks(parsed.ranks))
    if reverse:
        ranks = _step(steps, "reversed_direction", ranks, reverse_direction(ranks))
    problem = ranking_problem(ranks, len(MODELS))
    if problem is not None:
        return _Rejected("tie" if _has_tie(ranks) else "invalid_ranking", problem)
    return ranks, steps


def _step(
    steps: list[Step], kind: str, before: tuple[int, ...], after: tuple[int, ...]
) -> tuple[int, ...]:
    if after != before:
        steps.append((kind, format_ranks(before), format_ranks(after)))
    return after


def _has_tie(ranks: tuple[int, ...]) -> bool:
    harmful = [r for r in ranks if r != NA]
    return len(set(harmful)) != len(harmful)


def contested_choices(annotations: Iterable[Annotation]) -> tuple[Choice, ...]:
    """Record, for every prompt with several candidate annotations, which one is used."""
    pools: dict[tuple[str, str], list[Annotation]] = {}
    for a in annotations:
        pools.setdefault((a.annotator, a.prompt_id), []).append(a)
        if a.group is not None:
            pools.setdefault((HUMAN, a.prompt_id), []).append(a)
    return tuple(_choice(name, pid, pool) for (name, pid), pool in pools.items() if len(pool) > 1)


def _choice(annotator: str, pid: str, pool: list[Annotation]) -> Choice:
    chosen, rule = choose(annotator, pool)
    return Choice(annotator, pid, chosen, tuple(a for a in pool if a is not chosen), rule)
