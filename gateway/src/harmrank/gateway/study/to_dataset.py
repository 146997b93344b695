"""Store a :class:`StudyImport` as a dataset of the result schema, in the caller's transaction.

This only flushes; the caller commits, so an import is stored whole or not at all. The rows are
``dataset_rows``', what the tables cannot hold goes into the ``import_report``, and every
statement is ``study.repository``'s.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from harmrank.common.errors import Conflict
from harmrank.gateway.db.models import Dataset
from harmrank.gateway.study import dataset_rows as rows
from harmrank.gateway.study import repository
from harmrank.gateway.study.import_report import content_sha256, import_report
from harmrank.gateway.study.records import StudyImport


@dataclass(frozen=True)
class StoreOutcome:
    """What an import stored, or found already stored (``reused``)."""

    dataset_id: int
    reused: bool
    prompts: int
    responses: int
    rankings: int
    exclusions: int


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
    plan = rows.Plan.of(study)
    digest = content_sha256(study)
    existing = await repository.dataset_named(session, dataset)
    if existing is not None:
        _check_same_import(existing, source_sha256, digest)
        return _outcome(existing.id, study, plan, reused=True)
    models = await _ensure_models(session, study)
    annotators = await _ensure_annotators(session, study)
    dataset_id = await repository.insert_dataset(
        session,
        name=dataset,
        source=source,
        source_sha256=source_sha256,
        import_report=import_report(study, plan, digest),
    )
    prompts = await repository.insert_prompts(
        session, dataset_id, rows.prompt_rows(dataset_id, study)
    )
    await repository.insert_responses(session, rows.response_rows(plan, prompts, models))
    await repository.insert_rankings(session, rows.ranking_rows(plan, prompts, annotators))
    await repository.insert_exclusions(session, rows.exclusion_rows(dataset_id, study))
    return _outcome(dataset_id, study, plan, reused=False)


def _check_same_import(existing: Dataset, source_sha256: str | None, digest: str) -> None:
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


def _outcome(dataset_id: int, study: StudyImport, plan: rows.Plan, *, reused: bool) -> StoreOutcome:
    return StoreOutcome(
        dataset_id,
        reused,
        prompts=len(study.prompts),
        responses=len(plan.responses),
        rankings=len(plan.rankings),
        exclusions=len(study.exclusions),
    )


# --- models and annotators: shared by every dataset, so matched by name --------------------


async def _ensure_models(session: AsyncSession, study: StudyImport) -> dict[str, int]:
    """Ids of the import's models by name, inserting the missing ones at their position."""
    existing = await repository.model_positions(session)
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
    return await repository.insert_models(session, missing)


async def _ensure_annotators(session: AsyncSession, study: StudyImport) -> dict[str, int]:
    wanted = {name: rows.annotator_kind(name) for name in study.annotators()}
    stored = await repository.annotator_kinds_by_name(session)
    for name, kind in wanted.items():
        if name in stored and stored[name] != kind:
            raise Conflict(f"annotator {name!r} is stored as {stored[name]}, not {kind}")
    missing = [
        {"name": name, "kind": kind, "details": rows.annotator_details(study, name)}
        for name, kind in wanted.items()
        if name not in stored
    ]
    return await repository.insert_annotators(session, missing)
