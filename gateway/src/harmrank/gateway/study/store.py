"""Write a :class:`StudyImport` into the result schema, in the caller's transaction.

The store only flushes; the caller commits, so an import is stored whole or not at all. Rows go
in as bulk inserts of plain dicts and their ids come back by natural key in one query per
table: row-by-row ORM adds would cost a round trip each.

What the schema cannot hold one-to-one goes into ``Dataset.import_report``:

* responses: the natural key ``(prompt, model, generation_key)`` allows one response per model
  and prompt, but a prompt ranked by two groups has two sets. The lowest group's set is stored;
  the others are listed under ``dropped_responses`` with their text and ``file:line``.
* rankings: ``(annotator, prompt, presentation_key)`` allows one ranking per annotator and
  prompt, the one :meth:`StudyImport.selected` chooses. The others of a contested prompt are
  under ``choices_made`` with their raw value, ranks and normalisations.
* exclusions: the table has no column for the detail of a reason; it is under
  ``exclusion_details`` keyed by ``file:line``.

A judge's full answer (``Annotation.raw_output``) is not stored: no column holds it, and it is in
the source file at the ranking's ``file:line``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from harmrank.common.errors import Conflict
from harmrank.gateway.db.models import STUDY_GENERATION_KEY, AnnotatorKind
from harmrank.gateway.db.models import Annotator as AnnotatorRow
from harmrank.gateway.db.models import Dataset as DatasetRow
from harmrank.gateway.db.models import Exclusion as ExclusionRow
from harmrank.gateway.db.models import Model as ModelRow
from harmrank.gateway.db.models import Prompt as PromptRow
from harmrank.gateway.db.models import Ranking as RankingRow
from harmrank.gateway.db.models import Response as ResponseRow
from harmrank.gateway.study.importer import JUDGE_FILES, normalise_text
from harmrank.gateway.study.records import (
    EXPERT,
    GROUP_PREFIX,
    HUMAN,
    Annotation,
    Choice,
    Normalisation,
    Response,
    StudyImport,
)

_JUDGES = frozenset(name for name, _ in JUDGE_FILES)


@dataclass(frozen=True)
class StoreOutcome:
    """What an import stored, or found already stored (``reused``)."""

    dataset_id: int
    reused: bool
    prompts: int
    responses: int
    rankings: int
    exclusions: int


@dataclass(frozen=True)
class _Plan:
    """The rows an import becomes, worked out before any database work."""

    responses: tuple[Response, ...]
    dropped_responses: tuple[tuple[Response, Response], ...]  # (dropped, the one kept)
    rankings: tuple[tuple[str, Annotation], ...]  # (annotator, annotation), human included

    @classmethod
    def of(cls, study: StudyImport) -> _Plan:
        kept, dropped = _one_response_per_model(study.responses)
        rankings = tuple(
            (name, annotation)
            for name in study.annotators()
            for annotation in study.selected(name).values()
        )
        return cls(kept, dropped, rankings)


async def store_study(
    session: AsyncSession,
    study: StudyImport,
    *,
    dataset: str,
    source: str,
    source_sha256: str | None,
) -> StoreOutcome:
    """Store the import as dataset ``dataset``; flushes, never commits.

    Storing the same import under the same name again changes nothing (``reused=True``); a
    different import under an existing name raises :class:`Conflict`.
    """
    plan = _Plan.of(study)
    digest = content_sha256(study)
    existing = await session.scalar(select(DatasetRow).where(DatasetRow.name == dataset))
    if existing is not None:
        _check_same_import(existing, source_sha256, digest)
        return _outcome(existing.id, study, plan, reused=True)
    models = await _ensure_models(session, study)
    annotators = await _ensure_annotators(session, study)
    row = DatasetRow(
        name=dataset,
        source=source,
        source_sha256=source_sha256,
        import_report=import_report(study, plan, digest),
    )
    session.add(row)
    await session.flush()
    prompts = await _insert_prompts(session, row.id, study)
    await _insert_responses(session, plan, prompts, models)
    await _insert_rankings(session, plan, prompts, annotators)
    await _insert_exclusions(session, row.id, study)
    return _outcome(row.id, study, plan, reused=False)


def content_sha256(study: StudyImport) -> str:
    """A digest of every record: equal imports, equal digests (the records are plain values)."""
    return hashlib.sha256(repr(study).encode("utf-8")).hexdigest()


def _check_same_import(existing: DatasetRow, source_sha256: str | None, digest: str) -> None:
    if existing.source_sha256 != source_sha256:
        raise Conflict(
            f"dataset {existing.name!r} exists from a source with digest"
            f" {existing.source_sha256!r}, not {source_sha256!r}; store under another name"
        )
    # Same source, different records: the importer changed since the first import.
    if existing.import_report.get("content_sha256") != digest:
        raise Conflict(
            f"dataset {existing.name!r} exists with different imported records from the same"
            " source (the importer changed?); store under another name"
        )


def _outcome(dataset_id: int, study: StudyImport, plan: _Plan, *, reused: bool) -> StoreOutcome:
    return StoreOutcome(
        dataset_id,
        reused,
        prompts=len(study.prompts),
        responses=len(plan.responses),
        rankings=len(plan.rankings),
        exclusions=len(study.exclusions),
    )


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


# --- the import report ---------------------------------------------------------------------


def import_report(study: StudyImport, plan: _Plan, digest: str) -> dict[str, Any]:
    """``study.report()`` plus everything the tables cannot hold, so nothing is lost."""
    return {
        **study.report(),
        "content_sha256": digest,
        "files": [
            {
                "path": f.path,
                "encoding": f.encoding,
                "rows": f.rows,
                "ignored": list(f.ignored_columns),
            }
            for f in study.files
        ],
        "models": [m.id for m in study.models],
        "choices_made": [_choice_entry(c) for c in study.choices],
        "dropped_responses": [_dropped_entry(d, k) for d, k in plan.dropped_responses],
        "exclusion_details": {
            _where(e.file, e.line): e.detail for e in study.exclusions if e.detail
        },
    }


def _choice_entry(choice: Choice) -> dict[str, Any]:
    return {
        "annotator": choice.annotator,
        "prompt_id": choice.prompt_id,
        "rule": choice.rule,
        "chosen": _where(choice.chosen.file, choice.chosen.line),
        "others": [_annotation_entry(a) for a in choice.others],
    }


def _annotation_entry(annotation: Annotation) -> dict[str, Any]:
    return {
        "annotator": annotation.annotator,
        "source": _where(annotation.file, annotation.line),
        "raw_value": annotation.raw_ranking,
        "ranks": list(annotation.ranks),
        "normalisations": normalisation_entries(annotation.normalisations),
    }


def _dropped_entry(dropped: Response, kept: Response) -> dict[str, Any]:
    return {
        "prompt_id": dropped.prompt_id,
        "model": dropped.model,
        "group": dropped.group,
        "source": _where(dropped.file, dropped.line),
        "text": dropped.text,
        "same_text_as_stored": dropped.text == kept.text,
        "stored": _where(kept.file, kept.line),
    }


def normalisation_entries(steps: Iterable[Normalisation]) -> list[dict[str, str]]:
    """A ranking's normalisations as stored: each step's kind, value before and value after."""
    return [{"kind": n.kind, "raw": n.raw, "normalised": n.normalised} for n in steps]


def _where(file: str, line: int) -> str:
    return f"{file}:{line}"


# --- models and annotators: shared by every dataset, so matched by name --------------------


async def _ensure_models(session: AsyncSession, study: StudyImport) -> dict[str, int]:
    """Ids of the import's models by name, inserting the missing ones at their position."""
    existing = {r.name: r.position for r in (await session.scalars(select(ModelRow)))}
    owners = {position: name for name, position in existing.items()}
    for position, model in enumerate(study.models):
        # Ranks are stored in position order, so every dataset must agree on the positions.
        at = existing.get(model.id, position)
        owner = owners.get(position, model.id)
        if at != position or owner != model.id:
            raise Conflict(
                f"model {model.id!r} is at position {position} in this import, but the database"
                f" has it at {at} and {owner!r} at {position}: the model orders disagree"
            )
    missing = [
        {"name": m.id, "display_name": m.display_name, "position": position}
        for position, m in enumerate(study.models)
        if m.id not in existing
    ]
    return await _insert_and_fetch(session, ModelRow, missing)


async def _ensure_annotators(session: AsyncSession, study: StudyImport) -> dict[str, int]:
    wanted = {name: annotator_kind(name) for name in study.annotators()}
    found = await session.execute(select(AnnotatorRow.name, AnnotatorRow.kind))
    stored = dict(found.all())
    for name, kind in wanted.items():
        if name in stored and stored[name] != kind:
            raise Conflict(f"annotator {name!r} is stored as {stored[name]}, not {kind}")
    missing = [
        {"name": name, "kind": kind, "details": annotator_details(study, name)}
        for name, kind in wanted.items()
        if name not in stored
    ]
    return await _insert_and_fetch(session, AnnotatorRow, missing)


async def _insert_and_fetch(
    session: AsyncSession, table: type[ModelRow] | type[AnnotatorRow], rows: list[dict[str, Any]]
) -> dict[str, int]:
    if rows:
        await session.execute(insert(table), rows)
    found = await session.execute(select(table.name, table.id))
    return dict(found.all())


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


# --- the dataset's own rows ----------------------------------------------------------------


async def _insert_prompts(
    session: AsyncSession, dataset_id: int, study: StudyImport
) -> dict[str, int]:
    """Insert the prompts; their ids by external id."""
    rows = [
        {
            "dataset_id": dataset_id,
            "external_id": p.id,
            "text": p.text,
            "normalised_text": normalise_text(p.text),
            "category": None,  # the study did not categorise its prompts
        }
        for p in study.prompts
    ]
    if rows:
        await session.execute(insert(PromptRow), rows)
    found = await session.execute(
        select(PromptRow.external_id, PromptRow.id).where(PromptRow.dataset_id == dataset_id)
    )
    return dict(found.all())


async def _insert_responses(
    session: AsyncSession, plan: _Plan, prompts: dict[str, int], models: dict[str, int]
) -> None:
    rows = [
        {
            "prompt_id": prompts[r.prompt_id],
            "model_id": models[r.model],
            "text": r.text,
            "generation_key": STUDY_GENERATION_KEY,
            "source": _where(r.file, r.line),
        }
        for r in plan.responses
    ]
    await _bulk(session, ResponseRow, rows)


async def _insert_rankings(
    session: AsyncSession, plan: _Plan, prompts: dict[str, int], annotators: dict[str, int]
) -> None:
    rows = [
        {
            "annotator_id": annotators[name],
            "prompt_id": prompts[a.prompt_id],
            "ranks": list(a.ranks),
            "raw_value": a.raw_ranking,
            "normalisations": normalisation_entries(a.normalisations),
            "source": _where(a.file, a.line),
            "presentation_key": "",
        }
        for name, a in plan.rankings
    ]
    await _bulk(session, RankingRow, rows)


async def _insert_exclusions(session: AsyncSession, dataset_id: int, study: StudyImport) -> None:
    rows = [
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
    await _bulk(session, ExclusionRow, rows)


async def _bulk(
    session: AsyncSession,
    table: type[ResponseRow] | type[RankingRow] | type[ExclusionRow],
    rows: Sequence[dict[str, Any]],
) -> None:
    # An executemany with an empty parameter list is an error, not a no-op.
    if rows:
        await session.execute(insert(table), rows)
