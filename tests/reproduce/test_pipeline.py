"""The whole reproduction on the study's public data, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import jsonschema
import pytest
import pytest_asyncio
from matplotlib.image import imread
from sqlalchemy import func, select
from tests.conftest import BACKENDS, throwaway_postgres_database

from harmrank.gateway.db.engine import create_engine, session_factory, sqlite_url
from harmrank.gateway.db.models import Exclusion
from harmrank.gateway.reports.summary import Summary
from harmrank.metrics.report import ReportSettings
from harmrank.reproduce.pipeline import (
    ANNOTATORS,
    PAIRS,
    STUDY_CLUSTERS,
    Options,
    Outcome,
    reproduce,
)

SETTINGS = ReportSettings(p=0.9, resamples=50, seed=1, cluster_key=STUDY_CLUSTERS)


async def run(data: Path, out: Path, steps: list[str] | None = None) -> Outcome:
    log = steps if steps is not None else []
    return await reproduce(Options(str(data), out, SETTINGS), log.append)


# The reproduction takes seconds and every test here only reads its outcome: it runs once per
# backend for the module, not once per test. Module-scoped twins of conftest's `backend` and
# `db_url` (which are per test) keep the database alive as long as the outcome that filled it.
@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def db_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    if backend == "sqlite":
        yield sqlite_url(tmp_path_factory.mktemp("sqlite") / "harmrank.db")
    else:
        async with throwaway_postgres_database() as url:
            yield url


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def outcome(
    paper_data: Path, tmp_path_factory: pytest.TempPathFactory, db_url: str
) -> Outcome:
    folder = tmp_path_factory.mktemp("reproduce")
    with pytest.MonkeyPatch.context() as env:
        # what conftest's per-test private_cache does, for this module-wide run
        env.setenv("HARMRANK_CACHE_DIR", str(folder / "cache"))
        env.setenv("HARMRANK_DATABASE_URL", db_url)
        return await run(paper_data, folder / "out")


def test_summary_validates_against_its_schema(outcome: Outcome) -> None:
    schema = json.loads(outcome.files["schema"].read_text())
    summary = json.loads(outcome.files["summary"].read_text())
    jsonschema.validate(summary, schema)
    assert Summary.model_validate(summary) == outcome.summary


def test_counts_add_up(outcome: Outcome) -> None:
    summary = outcome.summary
    report = summary.data["import_report"]
    assert summary.n_prompts == report["prompts"]["distinct"]
    for file, read in report["rows_read"].items():
        assert read == report["kept"][file] + report["excluded"][file], file
    assert sum(report["exclusions"].values()) == sum(report["excluded"].values())
    for annotator in ANNOTATORS:
        n = summary.n_prompts_ranked[annotator]
        assert 0 < n <= summary.n_prompts
        for opponents in summary.pairwise_wins[annotator].values():
            for outcome_ in opponents.values():
                assert outcome_.wins + outcome_.losses + outcome_.ties == n


def test_rates_and_shares_are_proportions(outcome: Outcome) -> None:
    summary = outcome.summary
    for annotator in ANNOTATORS:
        shares = summary.most_harmful_share[annotator]
        na = summary.na_rate[annotator]
        assert all(0 <= (v or 0) <= 1 for v in [*shares.values(), *na.values()])
        # at most one model is the most harmful on each prompt
        assert sum(v or 0 for v in shares.values()) <= 1 + 1e-12


def test_agreement_names_its_parameters_for_every_pair(outcome: Outcome) -> None:
    entries = [e for e in outcome.summary.agreement if e.category is None]
    assert {(e.a, e.b) for e in entries} == {*PAIRS, ("jury", "human")}
    metrics = {e.metric for e in entries}
    assert {"rbo", "exact_match", "kendall_tau_b", "krippendorff_alpha", "f1_harmful"} <= metrics
    for entry in entries:
        if entry.metric == "rbo":
            assert entry.params["p"] == 0.9
            assert entry.params["variant"] == "ext"
            assert entry.params["lists"] in {"harmful", "tied"}
        assert entry.ci_low is None or entry.ci_low <= (entry.value or 0) <= (entry.ci_high or 1)


def test_figures_are_valid_pngs(outcome: Outcome) -> None:
    pngs = [p for k, p in outcome.files.items() if p.suffix == ".png"]
    assert {"figure1", "agreement", "win_rates", "na_rate"} <= set(outcome.files)
    assert len([k for k in outcome.files if k.startswith("ranks_")]) == 3
    for png in pngs:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        height, width, _ = imread(png).shape
        assert height > 100
        assert width > 100


def test_html_report_is_self_contained_and_states_conventions(outcome: Outcome) -> None:
    html = outcome.files["html"].read_text()
    assert html.count("data:image/png;base64,") == 8
    assert 'src="http' not in html
    assert "both lists empty -&gt; 1.0" in html  # the empty-list convention, escaped
    assert "p = 0.9" in html
    markdown = outcome.files["md"].read_text()
    assert "figures/figure1_complete_ranks.png" in markdown
    assert "| gpt4o vs human |" in markdown


def test_human_label_budget_for_every_judge_and_the_jury(outcome: Outcome) -> None:
    summary = outcome.summary
    rows = summary.human_label_budget
    keys = {(r.judge, r.n_human, r.method) for r in rows}
    for judge in ("gpt4o", "claude", "llama", "jury"):
        for n in (25, 50, 100, 200, 400):
            assert {(judge, n, m) for m in ("human_only", "judge_only", "ppi")} <= keys
    assert len(rows) == 4 * 5 * 3 * 9  # 3 harm rates, 3 win rates, 3 mean ranks
    assert summary.human_label_budget_settings is not None
    assert summary.human_label_budget_settings["repetitions"] == 500
    assert summary.jury is not None
    assert summary.jury["jurors"] == ["gpt4o", "claude", "llama"]
    assert "jury" in summary.annotators
    assert "jury" in summary.conventions
    ppi = [r for r in rows if r.method == "ppi"]
    assert all(r.human_only_equivalent_n is not None for r in ppi)
    harm = [r for r in ppi if r.estimand == "harm_rate"]
    assert all(r.coverage >= 0.9 for r in harm)
    # the judges are biased: judge-only intervals miss the humans' harm rate of Mistral-7B
    judge_only = [r for r in rows if r.method == "judge_only" and r.model == "mistral-7b"]
    assert all(
        r.bias < -0.05 and r.coverage == 0.0 for r in judge_only if r.estimand == "harm_rate"
    )
    html = outcome.files["html"].read_text()
    assert "How many human labels?" in html
    assert "human_label_budget" in outcome.files


async def test_every_exclusion_is_stored_with_its_reason(outcome: Outcome, db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        async with session_factory(engine)() as session:
            rows = (await session.scalars(select(Exclusion))).all()
            blank = await session.scalar(
                select(func.count()).select_from(Exclusion).where(Exclusion.reason == "")
            )
    finally:
        await engine.dispose()
    reasons = outcome.summary.data["import_report"]["exclusions"]
    assert len(rows) == sum(reasons.values())
    assert blank == 0


async def test_a_second_run_reuses_the_stored_import(
    paper_data: Path, tmp_path: Path, outcome: Outcome, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert not outcome.stored.reused
    monkeypatch.setenv("HARMRANK_DATABASE_URL", db_url)
    steps: list[str] = []
    # its own output folder: the shared outcome's files stay as the first run wrote them
    again = await run(paper_data, tmp_path / "out", steps)
    assert again.stored.reused
    assert again.summary.agreement == outcome.summary.agreement
    assert steps[0] == "locating the data"


def test_summary_states_findings_paired_comparisons_and_chance_corrected(outcome: Outcome) -> None:
    summary = outcome.summary
    names = {f"agreement.{e.a}~{e.b}.{e.metric}" for e in summary.agreement}
    names |= {f"bradley_terry.{n}" for n in summary.annotators}
    names |= {f"pairwise_wins.{n}" for n in summary.annotators}
    names |= {f"position.{b.annotator}" for b in summary.position_bias}
    names |= {f"paired.{'~'.join(d.x)}-{'~'.join(d.y)}.{d.metric}" for d in summary.paired}
    assert summary.findings
    for finding in summary.findings:
        assert set(finding.evidence) <= names, finding
    pairs = {(tuple(d.x), tuple(d.y)) for d in summary.paired}
    assert (("gpt4o", "claude"), ("gpt4o", "human")) in pairs
    for entry in summary.agreement:
        cc = entry.chance_corrected
        if entry.value is not None and entry.chance is not None and entry.chance < 1:
            expected = (entry.value - entry.chance) / (1 - entry.chance)
            assert cc.value is not None
            assert abs(cc.value - expected) < 1e-12
    # the study's intervals resample student groups, the prompt-level one beside them
    headline = next(e for e in summary.agreement if (e.a, e.b, e.metric) == PAIRS[0] + ("rbo",))
    assert headline.params["bootstrap_unit"] == "human annotation group"
    assert headline.prompt_ci_low is not None
    assert {e.decision for e in summary.sensitivity} == {
        "group 10 direction",
        "judge answers tied in their raw text",
    }
    assert summary.data["import_report"]["tied_raw_answers"]["llama"] == 19
