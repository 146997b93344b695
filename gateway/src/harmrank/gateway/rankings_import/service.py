"""Attach a file of human rankings to a dataset's prompts and responses, all or nothing.

The natural key is annotator × prompt × presentation_key "" (one standing ranking per
annotator and prompt). Re-importing what is stored changes nothing; a different ranking for a
stored key is a conflict naming the line, unless the caller asks to replace. Only flushes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from harmrank.common.errors import Conflict, InvalidInput
from harmrank.gateway.cpu_pool import Runner
from harmrank.gateway.datasets import repository as datasets_repo
from harmrank.gateway.datasets.form import UploadedFile
from harmrank.gateway.datasets.problems import LISTED_PROBLEMS, Collector, Problem, counted, listed
from harmrank.gateway.datasets.schemas import RankingsImported
from harmrank.gateway.datasets.service import problems_out
from harmrank.gateway.datasets.upload import detect_format
from harmrank.gateway.db.models import AnnotatorKind
from harmrank.gateway.rankings_import import repository as repo
from harmrank.gateway.rankings_import.parse import RankingEntry, parse_rankings
from harmrank.gateway.study.importer import normalise_text

# Annotator.name is String(100); kinds a person's ranking may be filed under.
MAX_ANNOTATOR_CHARS = 100
_HUMAN_KINDS = (AnnotatorKind.HUMAN, AnnotatorKind.EXPERT)
CHUNK = 1_000
"""Entries resolved, checked, planned and inserted a step at a time: an import at the body limit
has some 150,000, and the event loop serves other requests between steps (each awaits the
database) instead of waiting seconds for one pass over all of them. A step of 5,000 (an upload's
insert) held the loop 50-150 ms on a busy machine, one of 1,000 about a fifth of that."""
T = TypeVar("T")


class InvalidRankings(InvalidInput):
    error_type = "invalid_rankings"


class RankingConflict(Conflict):
    error_type = "ranking_conflict"


@dataclass(frozen=True)
class Resolved:
    """An entry with its prompt's row id."""

    entry: RankingEntry
    prompt_id: int


@dataclass
class _Plan:
    new: list[Resolved] = field(default_factory=list)
    unchanged: int = 0
    changed: list[tuple[Resolved, repo.StoredRanking]] = field(default_factory=list)


async def import_rankings(
    session: AsyncSession,
    dataset: str,
    upload: UploadedFile,
    parser: Runner,
    *,
    annotator: str | None = None,
    replace: bool = False,
) -> RankingsImported:
    """Validate the whole file against the dataset, then store it; any error stores nothing.

    ``parser`` reads the file (the app's parsing processes), as for a dataset upload."""
    dataset_id = await datasets_repo.dataset_id_by_name(session, dataset)
    found = Collector(upload.filename)
    models = await datasets_repo.models_of(session, dataset_id)
    if not models:
        found.error(0, "", f"dataset {dataset!r} has no responses, so there is nothing to rank")
        raise _invalid(upload.filename, found)
    fmt = detect_format(upload.filename, upload.content_type, upload.data)
    names = [n for _, n in models]
    # Nothing is written yet: end the read so the session's connection goes back to the pool
    # while the file is parsed (seconds for a large one), instead of idling in a transaction.
    await session.rollback()
    parsed = await parser.run(parse_rankings, upload.data, upload.filename, fmt, names, annotator)
    found.absorb(parsed)
    kept = _Kept()
    for entries in _chunks(parsed.records):
        resolved = await _resolve(session, dataset_id, entries, found)
        await _check_responses(session, resolved, models, found)
        kept.add(resolved, found)
    ids = await _check_annotators(session, kept.annotators, found)
    if found.errors:
        raise _invalid(upload.filename, found)
    unique = list(kept.first.values())
    plan = _Plan()
    for chunk in _chunks(unique):
        await _plan(session, chunk, ids, plan)
    if plan.changed and not replace:
        raise _conflict(upload.filename, plan.changed)
    created = sorted(set(kept.annotators) - set(ids))
    await _write(session, plan, ids, created, upload.filename)
    return RankingsImported(
        dataset=dataset,
        inserted=len(plan.new),
        unchanged=plan.unchanged,
        replaced=len(plan.changed),
        annotators_created=created,
        warnings=problems_out(listed(found.warnings)),
        warnings_total=found.warning_total,
    )


def _chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    return (items[i : i + CHUNK] for i in range(0, len(items), CHUNK))


def _invalid(filename: str, found: Collector) -> InvalidRankings:
    return InvalidRankings(
        f"{filename}: {counted(found.error_total)}, nothing was stored",
        details=[p.as_dict() for p in listed(found.errors)],
    )


def _conflict(filename: str, changed: list[tuple[Resolved, repo.StoredRanking]]) -> Conflict:
    """The changing lines, the first ``LISTED_PROBLEMS`` listed (a re-import of a large file
    with other rankings changes every line), all counted."""
    shown = listed(
        [
            Problem(
                filename,
                r.entry.line,
                "ranking",
                f"annotator {r.entry.annotator!r} already ranked this prompt {stored.ranks},"
                f" this line gives {list(r.entry.ranks)}; import with replace=true to overwrite",
            )
            for r, stored in changed[:LISTED_PROBLEMS]
        ]
    )
    lines = ", ".join(str(p.line) for p in shown)
    more = f" and {len(changed) - len(shown)} more" if len(changed) > len(shown) else ""
    return RankingConflict(
        f"{filename}: line(s) {lines}{more} change stored rankings; nothing was stored",
        details=[p.as_dict() for p in shown],
    )


async def _resolve(
    session: AsyncSession, dataset_id: int, entries: Sequence[RankingEntry], found: Collector
) -> list[Resolved]:
    """Each entry's prompt, by external id or by normalised text (looked up for these entries
    only: the dataset may hold many more prompts than the file ranks)."""
    texts = [normalise_text(e.prompt_text or "") if e.prompt_id is None else "" for e in entries]
    ids = {e.prompt_id for e in entries if e.prompt_id is not None}
    by_id, by_text = await repo.prompt_keys(session, dataset_id, ids, set(texts) - {""})
    resolved: list[Resolved] = []
    for entry, text in zip(entries, texts, strict=True):
        if entry.prompt_id is not None:
            prompt = by_id.get(entry.prompt_id)
            missing = f"the dataset has no prompt with id {entry.prompt_id!r}"
        else:
            prompt = by_text.get(text)
            missing = "the dataset has no prompt with this text"
        if prompt is None:
            found.error(entry.line, entry.prompt_field, missing)
        else:
            resolved.append(Resolved(entry, prompt))
    return resolved


async def _check_responses(
    session: AsyncSession,
    resolved: Sequence[Resolved],
    models: Sequence[tuple[int, str]],
    found: Collector,
) -> None:
    """Every ranked model must have answered the prompt; a CSV's response cells should match.

    A differing response text is a warning, not an error: the study's groups ranked different
    responses to a shared prompt, and only one set of them is stored.
    """
    texts = await datasets_repo.response_texts(session, {r.prompt_id for r in resolved})
    for r in resolved:
        for index, (model_id, name) in enumerate(models):
            stored = texts.get((r.prompt_id, model_id))
            if stored is None:
                found.error(r.entry.line, "", f"model {name!r} has no response to this prompt")
            elif r.entry.responses is not None and r.entry.responses[index] not in stored:
                column = r.entry.response_columns[index]
                found.warn(r.entry.line, column, f"differs from the stored response of {name!r}")


async def _check_annotators(
    session: AsyncSession, first_lines: Mapping[str, int], found: Collector
) -> dict[str, int]:
    """The ids of the stored annotators named; a stored one must be a person, not a judge."""
    stored = await repo.annotators_named(session, list(first_lines))
    for name, line in first_lines.items():
        if len(name) > MAX_ANNOTATOR_CHARS:
            found.error(line, "annotator", f"longer than {MAX_ANNOTATOR_CHARS} characters")
        elif name in stored and stored[name][1] not in _HUMAN_KINDS:
            found.error(line, "annotator", f"{name!r} is stored as a {stored[name][1]} annotator")
    return {name: annotator_id for name, (annotator_id, _) in stored.items()}


@dataclass
class _Kept:
    """The entries kept so far, one per (annotator, prompt), and each annotator's first line."""

    first: dict[tuple[str, int], Resolved] = field(default_factory=dict)
    annotators: dict[str, int] = field(default_factory=dict)

    def add(self, resolved: Sequence[Resolved], found: Collector) -> None:
        """A repeat of a kept entry is a warning if it ranks the same, an error if not."""
        for r in resolved:
            self.annotators.setdefault(r.entry.annotator, r.entry.line)
            earlier = self.first.setdefault((r.entry.annotator, r.prompt_id), r)
            if earlier is r:
                continue
            where = f"line {earlier.entry.line} ranks the same prompt for the same annotator"
            if earlier.entry.ranks == r.entry.ranks:
                found.warn(r.entry.line, "", f"{where} the same way; this line is ignored")
            else:
                found.error(r.entry.line, "", f"{where} differently")


async def _plan(
    session: AsyncSession, unique: Sequence[Resolved], annotator_ids: dict[str, int], plan: _Plan
) -> None:
    """Add ``unique`` to ``plan``: new, unchanged, or changing a stored ranking."""
    stored = await repo.stored_rankings(
        session, set(annotator_ids.values()), {r.prompt_id for r in unique}
    )
    for r in unique:
        annotator_id = annotator_ids.get(r.entry.annotator)
        existing = stored.get((annotator_id, r.prompt_id)) if annotator_id is not None else None
        if existing is None:
            plan.new.append(r)
        elif existing.ranks == list(r.entry.ranks):
            plan.unchanged += 1
        else:
            plan.changed.append((r, existing))


async def _write(
    session: AsyncSession, plan: _Plan, ids: dict[str, int], created: list[str], filename: str
) -> None:
    try:
        ids = ids | await repo.insert_human_annotators(session, created)
        for new in _chunks(plan.new):
            # A chunk at a time: SQLAlchemy prepares an executemany's rows on the event loop.
            rows = [{**_values(r, filename), "annotator_id": ids[r.entry.annotator]} for r in new]
            await repo.insert_rankings(session, rows)
        for changed in _chunks(plan.changed):
            rows = [{**_values(r, filename), "id": stored.id} for r, stored in changed]
            await repo.replace_rankings(session, rows)
    except IntegrityError:
        # A concurrent import stored one of these annotators or keys after this one looked.
        raise RankingConflict("another import stored some of these rankings meanwhile") from None


def _values(r: Resolved, filename: str) -> dict[str, Any]:
    return {
        "prompt_id": r.prompt_id,
        "ranks": list(r.entry.ranks),
        "raw_value": r.entry.raw_value,
        "normalisations": list(r.entry.normalisations),
        "source": f"{filename}:{r.entry.line}",
        "presentation_key": "",
    }
