"""The reproduction, step by step: fetch → import → store → read back → compute → write.

The figures are computed from what was stored, read back through the gateway's repository, so
the database (SQLite by default, PostgreSQL with ``HARMRANK_DATABASE_URL``) is the one source
of truth and a report can be recomputed from it alone.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from harmrank.gateway.db.engine import (
    create_engine,
    database_url_from_env,
    redact_url,
    session_factory,
)
from harmrank.gateway.db.migrate import upgrade_async
from harmrank.gateway.explore.standalone import local_explorer_url
from harmrank.gateway.reports.figures import write_figures
from harmrank.gateway.reports.render import STUDY_PAGE, write_reports
from harmrank.gateway.reports.summary import Summary, build_summary
from harmrank.gateway.results.repository import load_rankings
from harmrank.gateway.study import StudyImport, decisions, import_study
from harmrank.gateway.study.records import GROUP_PREFIX
from harmrank.gateway.study.to_dataset import StoreOutcome, store_study
from harmrank.metrics.label_budget import BudgetSettings
from harmrank.metrics.rankings import AnnotatorRankings
from harmrank.metrics.report import Report, ReportSettings, build_report
from harmrank.metrics.report_ppi import PPISpec
from harmrank.reproduce import source

# Every pair of humans and judges; judges first so the humans are the reference for F1.
ANNOTATORS = ("human", "expert", "gpt4o", "claude", "llama")
PAIRS = (
    ("gpt4o", "human"),
    ("claude", "human"),
    ("llama", "human"),
    ("gpt4o", "claude"),
    ("gpt4o", "llama"),
    ("claude", "llama"),
    ("human", "expert"),
)

Step = Callable[[str], None]
# The study's human rankings come from 17 student groups, each with its own habits: intervals
# resample whole groups by default (the prompt-level interval is shown beside them).
STUDY_CLUSTERS = "human annotation group"
REFERENCE = "human"


@dataclass(frozen=True)
class Options:
    data: str | None
    out: Path
    settings: ReportSettings


@dataclass(frozen=True)
class Outcome:
    summary: Summary
    files: dict[str, Path]
    stored: StoreOutcome


def dataset_name(digest: str) -> str:
    return f"llm-harm-{digest[:12]}"


async def store_and_reload(
    study: StudyImport, url: str, *, label: str, digest: str
) -> tuple[StoreOutcome, dict[str, AnnotatorRankings]]:
    """Store the import in one transaction (reusing an identical earlier import), read it back."""
    engine = create_engine(url)
    try:
        await upgrade_async(engine)
        sessions = session_factory(engine)
        async with sessions() as session, session.begin():
            stored = await store_study(
                session, study, dataset=dataset_name(digest), source=label, source_sha256=digest
            )
        async with sessions() as session:
            rankings = await load_rankings(session, dataset_name(digest))
    finally:
        await engine.dispose()
    return stored, rankings


def human_groups(rankings: dict[str, AnnotatorRankings]) -> dict[str, str]:
    """Each prompt's student group; a prompt two groups ranked takes the lower one, as the
    pooled ``human`` annotator does."""
    numbered = sorted(
        (int(name.removeprefix(GROUP_PREFIX)), r)
        for name, r in rankings.items()
        if name.startswith(GROUP_PREFIX)
    )
    out: dict[str, str] = {}
    for number, r in numbered:
        for prompt in r.prompts:
            out.setdefault(prompt, f"group {number}")
    return out


def data_section(study: StudyImport, label: str, digest: str, url: str) -> dict[str, Any]:
    return {
        "source": label,
        "content_sha256": digest,
        "database": redact_url(url),
        "import_report": study.report(),
    }


def ppi_spec(settings: ReportSettings) -> PPISpec:
    """The judges' jury, and PPI with the study's humans as the truth: every prompt has human
    rankings, so the estimates use them all and the simulation subsamples them."""
    budget = BudgetSettings(seed=settings.seed, confidence=settings.confidence)
    return PPISpec(
        truth="human",
        judges=decisions.JUDGES,
        policy="the study's (every prompt ranked by one human group)",
        budget=budget,
        confidence=settings.confidence,
    )


def write_outputs(
    report: Report, summary: Summary, out: Path, dataset: str | None = None
) -> dict[str, Path]:
    """The figures, report.html/.md and summary.json; with the dataset's name, the report's
    figures link to their samples in ``harmrank explore OUT_DIR`` (on its default port)."""
    figures = write_figures(report, out / "figures")
    files = dict(figures)
    page = replace(STUDY_PAGE, explore=local_explorer_url(dataset) if dataset else None)
    files.update(write_reports(summary, figures, out, page))
    files["summary"] = out / "summary.json"
    files["summary"].write_text(summary.model_dump_json(indent=2) + "\n", encoding="utf-8")
    files["schema"] = out / "summary.schema.json"
    schema = json.dumps(Summary.model_json_schema(), indent=2)
    files["schema"].write_text(schema + "\n", encoding="utf-8")
    return files


async def reproduce(options: Options, step: Step) -> Outcome:
    step("locating the data")
    folder, label = source.resolve(options.data)
    digest = source.content_sha256(folder)
    step("importing the study's files")
    study = import_study(folder)
    options.out.mkdir(parents=True, exist_ok=True)
    url = database_url_from_env(options.out / "harmrank.db")
    step("storing in the database")
    stored, rankings = await store_and_reload(study, url, label=label, digest=digest)
    annotators = [rankings[name] for name in ANNOTATORS]
    clusters = human_groups(rankings) if options.settings.cluster_key else None
    stored_set = {a.annotator: a for a in annotators}
    report = build_report(
        annotators,
        options.settings,
        pairs=PAIRS,
        progress=step,
        ppi=ppi_spec(options.settings),
        clusters=clusters,
        reference_name=REFERENCE,
        decisions=decisions.variants(study, stored_set),
        concordance=decisions.direction_evidence(study, stored_set),
        fixed_order=decisions.JUDGES,  # every judge saw A = Mistral, B = MPT, C = StableLM
    )
    summary = build_summary(
        report, n_prompts=len(study.prompts), data=data_section(study, label, digest, url)
    )
    step("writing figures and reports")
    files = write_outputs(report, summary, options.out, dataset_name(digest))
    return Outcome(summary, files, stored)
