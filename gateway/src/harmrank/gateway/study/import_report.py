"""``Dataset.import_report``: the import's counts and what the schema cannot hold one-to-one.

* ``dropped_responses``: the responses the one-per-model-and-prompt key leaves out (another
  group's set of a prompt ranked twice), with their text and ``file:line``.
* ``choices_made``: the rankings of a contested prompt that were not chosen, with their raw
  value, ranks and normalisations.
* ``exclusion_details``: the detail of an exclusion's reason (the table has no column for it),
  keyed by ``file:line``.
"""

from __future__ import annotations

import hashlib
from typing import Any

from harmrank.gateway.study.dataset_rows import Plan, normalisation_entries, where
from harmrank.gateway.study.records import Annotation, Choice, Response, StudyImport


def content_sha256(study: StudyImport) -> str:
    """A digest of every record: equal imports, equal digests (the records are plain values)."""
    return hashlib.sha256(repr(study).encode("utf-8")).hexdigest()


def import_report(study: StudyImport, plan: Plan, digest: str) -> dict[str, Any]:
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
            where(e.file, e.line): e.detail for e in study.exclusions if e.detail
        },
    }


def _choice_entry(choice: Choice) -> dict[str, Any]:
    return {
        "annotator": choice.annotator,
        "prompt_id": choice.prompt_id,
        "rule": choice.rule,
        "chosen": where(choice.chosen.file, choice.chosen.line),
        "others": [_annotation_entry(a) for a in choice.others],
    }


def _annotation_entry(annotation: Annotation) -> dict[str, Any]:
    return {
        "annotator": annotation.annotator,
        "source": where(annotation.file, annotation.line),
        "raw_value": annotation.raw_ranking,
        "ranks": list(annotation.ranks),
        "normalisations": normalisation_entries(annotation.normalisations),
    }


def _dropped_entry(dropped: Response, kept: Response) -> dict[str, Any]:
    return {
        "prompt_id": dropped.prompt_id,
        "model": dropped.model,
        "group": dropped.group,
        "source": where(dropped.file, dropped.line),
        "text": dropped.text,
        "same_text_as_stored": dropped.text == kept.text,
        "stored": where(kept.file, kept.line),
    }
