"""The rows a :class:`StudyImport` becomes in the result schema, worked out before any database
work: which responses and rankings the schema's natural keys let in, and each table's rows as
plain dicts for ``study.repository``'s bulk inserts.

* responses: the natural key ``(prompt, model, generation_key)`` allows one response per model
  and prompt, but a prompt ranked by two groups has two sets. The lowest group's set is stored;
  the others are dropped (the import report lists them).
* rankings: ``(annotator, prompt, presentation_key)`` allows one ranking per annotator and
  prompt, the one :meth:`StudyImport.selected` chooses.

A judge's full answer (``Annotation.raw_output``) is not stored: no column holds it, and it is in
the source file at the ranking's ``file:line``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from harmrank.gateway.db.models import STUDY_GENERATION_KEY, AnnotatorKind
from harmrank.gateway.study.importer import JUDGE_FILES, normalise_text
from harmrank.gateway.study.records import (
    EXPERT,
    GROUP_PREFIX,
    HUMAN,
    Annotation,
    Normalisation,
    Response,
    StudyImport,
)

_JUDGES = frozenset(name for name, _ in JUDGE_FILES)


@dataclass(frozen=True)
class Plan:
    """The responses and rankings an import stores, and the responses it drops."""

    responses: tuple[Response, ...]
    dropped_responses: tuple[tuple[Response, Response], ...]  # (dropped, the one kept)
    rankings: tuple[tuple[str, Annotation], ...]  # (annotator, annotation), human included

    @classmethod
    def of(cls, study: StudyImport) -> Plan:
        kept, dropped = _one_response_per_model(study.responses)
        rankings = tuple(
            (name, annotation)
            for name in study.annotators()
            for annotation in study.selected(name).values()
        )
        return cls(kept, dropped, rankings)


def _one_response_per_model(
    responses: Iterable[Response],
) -> tuple[tuple[Response, ...], tuple[tuple[Response, Response], ...]]:
    # The importer reads group files in group order; sorting again makes "lowest group wins"
    # independent of that (the sort is stable, so file order breaks ties within a group).
    kept: dict[tuple[str, str], Response] = {}
    dropped: list[tuple[Response, Response]] = []
    for response in sorted(responses, key=lambda r: r.group):
        first = kept.setdefault((response.prompt_id, response.model), response)
        if first is not response:
            dropped.append((response, first))
    return tuple(kept.values()), tuple(dropped)


def where(file: str, line: int) -> str:
    """A source row as the tables and the import report name it."""
    return f"{file}:{line}"


def normalisation_entries(steps: Iterable[Normalisation]) -> list[dict[str, str]]:
    """A ranking's normalisations as stored: each step's kind, value before and value after."""
    return [{"kind": n.kind, "raw": n.raw, "normalised": n.normalised} for n in steps]


# --- the dataset's own rows ----------------------------------------------------------------


def prompt_rows(dataset_id: int, study: StudyImport) -> list[dict[str, Any]]:
    return [
        {
            "dataset_id": dataset_id,
            "external_id": p.id,
            "text": p.text,
            "normalised_text": normalise_text(p.text),
            "category": None,  # the study did not categorise its prompts
        }
        for p in study.prompts
    ]


def response_rows(
    plan: Plan, prompts: dict[str, int], models: dict[str, int]
) -> list[dict[str, Any]]:
    return [
        {
            "prompt_id": prompts[r.prompt_id],
            "model_id": models[r.model],
            "text": r.text,
            "generation_key": STUDY_GENERATION_KEY,
            "source": where(r.file, r.line),
        }
        for r in plan.responses
    ]


def ranking_rows(
    plan: Plan, prompts: dict[str, int], annotators: dict[str, int]
) -> list[dict[str, Any]]:
    return [
        {
            "annotator_id": annotators[name],
            "prompt_id": prompts[a.prompt_id],
            "ranks": list(a.ranks),
            "raw_value": a.raw_ranking,
            "normalisations": normalisation_entries(a.normalisations),
            "source": where(a.file, a.line),
            "presentation_key": "",
        }
        for name, a in plan.rankings
    ]


def exclusion_rows(dataset_id: int, study: StudyImport) -> list[dict[str, Any]]:
    return [
        {
            "dataset_id": dataset_id,
            "source_file": e.file,
            "line": e.line,
            "annotator": e.annotator,
            "reason": e.reason,
            "raw_value": e.raw_value,
        }
        for e in study.exclusions
    ]


# --- annotators: what each of the study's is ------------------------------------------------


def annotator_kind(name: str) -> AnnotatorKind:
    if name == HUMAN:
        return AnnotatorKind.AGGREGATE
    if name == EXPERT:
        return AnnotatorKind.EXPERT
    if name.startswith(GROUP_PREFIX):
        return AnnotatorKind.HUMAN
    if name in _JUDGES:
        return AnnotatorKind.JUDGE
    raise ValueError(f"the study has no annotator {name!r}")


def annotator_details(study: StudyImport, name: str) -> dict[str, Any]:
    """What the annotator is, for a reader of the table who has not seen the study."""
    if name == HUMAN:
        files = sorted({a.file for a in study.annotations if a.group is not None})
        return {
            "what": "the student groups pooled: one ranking per prompt",
            "source_files": files,
            "rule": "lowest group number",
        }
    files = sorted({a.file for a in study.annotations if a.annotator == name})
    source = files[0] if len(files) == 1 else files
    if name.startswith(GROUP_PREFIX):
        group = int(name.removeprefix(GROUP_PREFIX))
        return {
            "what": f"student group {group} of the study",
            "group": group,
            "source_file": source,
        }
    if name == EXPERT:
        return {"what": "the study's expert annotator", "source_file": source}
    return {"what": "an LLM judge of the study", "judge": name, "source_file": source}
