"""The frozen records an import produces, and the views built from them.

Every record names the file and the physical line it came from, so any count in the report
can be traced back to the rows behind it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from harmrank.gateway.study.notation import raw_answer_tied
from harmrank.metrics.rankings import AnnotatorRankings

HUMAN = "human"
EXPERT = "expert"
GROUP_PREFIX = "group_"


@dataclass(frozen=True)
class Model:
    id: str
    display_name: str


@dataclass(frozen=True)
class Prompt:
    """A prompt once, however many groups ranked it: ``text`` is as first seen."""

    id: str
    text: str
    groups: tuple[int, ...]
    file: str
    line: int


@dataclass(frozen=True)
class Response:
    """One model's response; a prompt ranked by two groups has two sets (they differ)."""

    prompt_id: str
    model: str
    group: int
    text: str
    file: str
    line: int


@dataclass(frozen=True)
class Normalisation:
    """One change made to a ranking: ``raw`` before, ``normalised`` after this step."""

    kind: str
    raw: str
    normalised: str
    annotator: str
    file: str
    line: int


@dataclass(frozen=True)
class Annotation:
    """One annotator's ranking of one prompt's responses, in canonical model order."""

    annotator: str
    group: int | None
    prompt_id: str
    raw_ranking: str
    ranks: tuple[int, ...]
    normalisations: tuple[Normalisation, ...]
    file: str
    line: int
    raw_output: str | None = None  # a judge's full answer, before the authors' extraction


@dataclass(frozen=True)
class Exclusion:
    """A row left out, with why; ``raw_value`` is the ranking the row carried."""

    file: str
    line: int
    annotator: str
    reason: str
    raw_value: str
    detail: str = ""


@dataclass(frozen=True)
class FileRead:
    path: str
    encoding: str
    rows: int
    ignored_columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class Choice:
    """Which annotation stands for ``annotator`` on a prompt that has several, and why."""

    annotator: str
    prompt_id: str
    chosen: Annotation
    others: tuple[Annotation, ...]
    rule: str


def choose(annotator: str, candidates: Iterable[Annotation]) -> tuple[Annotation, str]:
    """The one annotation an annotator's rankings use for a prompt, and the rule that chose it.

    For ``human``, the lowest group number wins (then file order): deterministic and
    independent of file order, and the study gives no reason to prefer either group. For any
    other annotator (a judge file lists a doubled prompt twice), the first row in the file.
    """
    if annotator == HUMAN:
        key = sorted(candidates, key=lambda a: (a.group or 0, a.file, a.line))
        return key[0], "lowest group number"
    return sorted(candidates, key=lambda a: (a.file, a.line))[0], "first row in file order"


@dataclass(frozen=True)
class StudyImport:
    models: tuple[Model, ...]
    prompts: tuple[Prompt, ...]
    responses: tuple[Response, ...]
    annotations: tuple[Annotation, ...]
    exclusions: tuple[Exclusion, ...]
    files: tuple[FileRead, ...]
    choices: tuple[Choice, ...]

    @property
    def normalisations(self) -> tuple[Normalisation, ...]:
        return tuple(n for a in self.annotations for n in a.normalisations)

    def annotators(self) -> tuple[str, ...]:
        """``human`` first, then every annotator with at least one annotation."""
        names = sorted({a.annotator for a in self.annotations}, key=_annotator_order)
        has_groups = any(n.startswith(GROUP_PREFIX) for n in names)
        return ((HUMAN,) if has_groups else ()) + tuple(names)

    def selected(self, annotator: str) -> dict[str, Annotation]:
        """One annotation per prompt for ``annotator`` (``human`` pools every group)."""
        by_prompt: dict[str, list[Annotation]] = {}
        for a in self.annotations:
            if a.annotator == annotator or (annotator == HUMAN and a.group is not None):
                by_prompt.setdefault(a.prompt_id, []).append(a)
        return {p: choose(annotator, found)[0] for p, found in by_prompt.items()}

    def rankings(self, annotator: str) -> AnnotatorRankings:
        rows: dict[str, Sequence[int]] = {p: a.ranks for p, a in self.selected(annotator).items()}
        return AnnotatorRankings.build(annotator, [m.id for m in self.models], rows)

    def all_rankings(self) -> dict[str, AnnotatorRankings]:
        return {name: self.rankings(name) for name in self.annotators()}

    def report(self) -> dict[str, dict[str, int]]:
        """Counts per kind, to check the import against what the files should hold."""
        return {
            "rows_read": {f.path: f.rows for f in self.files},
            "kept": _per_file(self.files, (a.file for a in self.annotations)),
            "excluded": _per_file(self.files, (e.file for e in self.exclusions)),
            "normalisations": dict(Counter(n.kind for n in self.normalisations)),
            "exclusions": dict(Counter(e.reason for e in self.exclusions)),
            "prompts": self._prompt_counts(),
            "annotations": self._annotation_counts(),
            "choices": dict(Counter(c.annotator for c in self.choices)),
            "tied_raw_answers": self._tied_raw_answers(),
        }

    def _tied_raw_answers(self) -> dict[str, int]:
        """Kept judge rankings whose raw answer ties two responses (extracted_pred broke it)."""
        judges = {a.annotator for a in self.annotations if a.raw_output is not None}
        return {
            j: sum(raw_answer_tied(a.raw_output) for a in self.selected(j).values())
            for j in sorted(judges)
        }

    def _prompt_counts(self) -> dict[str, int]:
        multi = [p for p in self.prompts if len(p.groups) > 1]
        return {
            "distinct": len(self.prompts),
            "in_several_groups": len(multi),
            "duplicate_rows": sum(len(p.groups) - 1 for p in multi),
        }

    def _annotation_counts(self) -> dict[str, int]:
        # "human" has no rows of its own: it counts the prompts its selection covers.
        counts = Counter(a.annotator for a in self.annotations)
        if HUMAN in self.annotators():
            counts[HUMAN] = len(self.selected(HUMAN))
        return {name: counts[name] for name in self.annotators()}


def _per_file(files: tuple[FileRead, ...], paths: Iterable[str]) -> dict[str, int]:
    counts = Counter(paths)
    return {f.path: counts[f.path] for f in files}


def _annotator_order(name: str) -> tuple[int, int, str]:
    if name.startswith(GROUP_PREFIX) and name[len(GROUP_PREFIX) :].isdigit():
        return (1, int(name[len(GROUP_PREFIX) :]), name)
    return (0 if name == EXPERT else 2, 0, name)
