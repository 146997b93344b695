"""The dashboards query only what harmrank and TGI export, and their SQL runs on a real run.

The harmrank metric names are scraped from the running services' ``/metrics`` after a whole
run; TGI's come from its documented list (``tgi_metrics.py``). Every SQL panel and the ``$run``
variable run against the run's PostgreSQL database, migrated by Alembic (views of 0004).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from tests.deploy.conftest import FinishedRun
from tests.deploy.dashboards import (
    POSTGRES_UID,
    PROMETHEUS_UID,
    Query,
    dashboards,
    datasource_refs,
    load,
    promql_queries,
    sql_queries,
    variables,
)
from tests.deploy.tgi_metrics import tgi_documented

from harmrank.gateway.db.engine import create_engine


def exported_series(finished_run: FinishedRun) -> set[str]:
    """Every series name (histograms by _bucket/_sum/_count) the harmrank services export."""
    stack = finished_run.stack
    names: set[str] = set()
    for url in (stack.gateway, stack.generator, stack.judge, stack.metrics):
        body = httpx.get(f"{url}/metrics", timeout=10).text
        for family in text_string_to_metric_families(body):
            names.update(sample.name for sample in family.samples)
    return names


def test_every_dashboard_has_a_uid_a_title_and_its_datasources_by_uid() -> None:
    found = {d["uid"]: d for d in dashboards()}
    assert set(found) == {"harmrank-operations", "harmrank-results"}
    for dashboard in found.values():
        assert dashboard["title"].startswith("harmrank")
        ids = [p["id"] for p in dashboard["panels"]]
        assert len(ids) == len(set(ids)), "panel ids must be unique"
    assert promql_queries()
    assert sql_queries()
    assert {q.dashboard for q in sql_queries()} == {"harmrank-results"}


@pytest.mark.parametrize("name", ["operations", "results"])
def test_no_panel_names_a_fixed_datasource_uid(name: str) -> None:
    """Imported into any Grafana: each datasource is a variable, declared in ``__inputs``."""
    dashboard = load(name)
    declared = {v["name"]: v for v in variables(dashboard) if v["type"] == "datasource"}
    inputs = {i["name"]: i for i in dashboard["__inputs"]}
    refs = list(datasource_refs(dashboard["panels"])) + list(
        datasource_refs(dashboard["templating"])
    )
    assert refs
    for ref in refs:
        found = re.fullmatch(r"\$\{(\w+)\}", ref["uid"])
        assert found, f"{name}: a fixed datasource uid {ref['uid']!r}"
        variable = declared[found.group(1)]
        assert variable["query"] == ref["type"]
    for variable in declared.values():
        chosen = re.fullmatch(r"\$\{(\w+)\}", variable["current"]["value"])
        assert chosen, variable
        assert inputs[chosen.group(1)]["type"] == "datasource"
        assert inputs[chosen.group(1)]["pluginId"] == variable["query"]
    assert {r["id"] for r in dashboard["__requires"]} >= {v["query"] for v in declared.values()}


def test_the_operations_dashboard_covers_every_area() -> None:
    names = set().union(*(q.metric_names() for q in promql_queries()))
    for family in (
        "harmrank_http_requests_total",
        "harmrank_http_request_duration_seconds_bucket",
        "harmrank_tasks",
        "harmrank_tasks_finished_total",
        "harmrank_tasks_failed",
        "harmrank_report_missing_rankings_total",
        "tgi_queue_size",
        "tgi_batch_current_size",
        "tgi_request_duration_bucket",
        "harmrank_judge_calls_total",
        "harmrank_judge_retries_total",
        "harmrank_judge_input_tokens_total",
        "harmrank_judge_cost_usd_total",
        "harmrank_generator_requests_total",
    ):
        assert family in names


def test_every_metric_a_dashboard_queries_is_exported(finished_run: FinishedRun) -> None:
    exported = exported_series(finished_run)
    missing = []
    for query in promql_queries():
        assert query.metric_names(), f"{query.panel}: queries no harmrank or TGI metric"
        for name in query.metric_names():
            known = tgi_documented(name) if name.startswith("tgi_") else name in exported
            if not known:
                missing.append((query.panel, name))
    assert not missing, f"queried but exported by no service nor documented by TGI: {missing}"


def test_the_gateway_exports_the_task_queue(finished_run: FinishedRun) -> None:
    body = httpx.get(f"{finished_run.stack.gateway}/metrics", timeout=10).text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }
    done = (("stage", "generate"), ("state", "done"))
    assert samples[("harmrank_tasks", done)] == 9  # 3 prompts x 3 models
    finished = (("outcome", "done"), ("stage", "score"))
    assert samples[("harmrank_tasks_finished_total", finished)] == 1
    queued = (("stage", "judge"), ("state", "queued"))
    assert samples[("harmrank_tasks", queued)] == 0
    assert samples[("harmrank_tasks_oldest_queued_age_seconds", (("stage", "judge"),))] == 0


async def _rows(url: str, sql: str, run_id: int) -> list[Any]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            result = await connection.execute(text(sql.replace("$run", str(run_id))))
            return list(result)
    finally:
        await engine.dispose()


@pytest.mark.parametrize("query", sql_queries(), ids=lambda q: q.panel)
def test_every_sql_panel_returns_rows_for_a_finished_run(
    finished_run: FinishedRun, query: Query
) -> None:
    rows = asyncio.run(_rows(finished_run.stack.database_url, query.text, finished_run.run_id))
    assert rows, f"{query.panel}: no rows for run {finished_run.run_id}"


def test_the_run_variable_lists_the_finished_run(finished_run: FinishedRun) -> None:
    (run,) = [v for v in variables(load("results")) if v["name"] == "run"]
    assert run["datasource"]["uid"] == POSTGRES_UID
    rows = asyncio.run(_rows(finished_run.stack.database_url, run["query"], finished_run.run_id))
    assert [r[0] for r in rows] == [finished_run.run_id]
    assert rows[0][1].startswith(f"run {finished_run.run_id} · smoke-")


def test_results_views_agree_with_the_report(finished_run: FinishedRun) -> None:
    stack, run_id = finished_run.stack, finished_run.run_id
    report = httpx.get(f"{stack.gateway}/v1/runs/{run_id}/report", timeout=10).json()
    sql = "SELECT annotator, model, na_rate FROM run_harm_rates WHERE run_id = $run"
    rows = asyncio.run(_rows(stack.database_url, sql, run_id))
    for annotator, model, na_rate in rows:
        section = report["annotators"][annotator]["harm_rates"]
        assert na_rate == section["na_rate"][section["models"].index(model)]
    assert len(rows) == len(report["annotators"]) * len(report["models"])
    sql = "SELECT count(*) FROM run_agreement WHERE run_id = $run"
    (count,) = asyncio.run(_rows(stack.database_url, sql, run_id))[0]
    assert count == sum(len(pair["figures"]) for pair in report["agreement"])


def test_the_operations_service_variable_is_a_prometheus_label() -> None:
    (service,) = [v for v in variables(load("operations")) if v["name"] == "service"]
    assert service["datasource"]["uid"] == PROMETHEUS_UID
    assert service["query"]["query"] == "label_values(harmrank_http_requests_total, service)"
