"""A real Prometheus scrapes a locally started stack, and every dashboard query returns series.

Prometheus is Debian's ``prometheus`` package (``apt-get install prometheus``); the test writes a
prometheus.yml like ``deploy/prometheus/prometheus.yml`` but with the loopback addresses of the
stack's services and TGI stand-ins, scraping every second.
"""

from __future__ import annotations

import importlib
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import free_port
from tests.deploy.conftest import ROOT, FinishedRun
from tests.deploy.dashboards import Query, fill_promql, promql_queries

# PyYAML ships no type stubs; imported by name as the generator does.
yaml: Any = importlib.import_module("yaml")

SCRAPE_SECONDS = 1
WINDOW = "60s"


def scrape_config(finished_run: FinishedRun) -> dict[str, Any]:
    stack = finished_run.stack
    services = {
        "gateway": stack.gateway,
        "generator": stack.generator,
        "judge": stack.judge,
        "metrics": stack.metrics,
    }
    harmrank = [
        {"targets": [url.removeprefix("http://")], "labels": {"service": name}}
        for name, url in services.items()
    ]
    tgi = [
        {"targets": [url.removeprefix("http://")], "labels": {"model": name}}
        for name, url in stack.tgi.items()
    ]
    return {
        "global": {"scrape_interval": f"{SCRAPE_SECONDS}s"},
        "scrape_configs": [
            {"job_name": "harmrank", "static_configs": harmrank},
            {"job_name": "tgi", "static_configs": tgi},
        ],
    }


@pytest.fixture(scope="module")
def prometheus(
    finished_run: FinishedRun, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("Prometheus is needed: apt-get install prometheus", pytrace=False)
    folder = tmp_path_factory.mktemp("prometheus")
    config = folder / "prometheus.yml"
    config.write_text(yaml.safe_dump(scrape_config(finished_run)))
    port = free_port()
    log_path = folder / "prometheus.log"
    log = log_path.open("w")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_scrapes(url, 4 + len(finished_run.stack.tgi), process, log_path)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def query(url: str, expr: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{url}/api/v1/query", params={"query": expr}, timeout=10)
    body = response.json()
    assert response.status_code == 200, (expr, body)
    assert body["status"] == "success", (expr, body)
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def wait_for_scrapes(url: str, targets: int, process: subprocess.Popen[bytes], log: Path) -> None:
    """Until every target was scraped successfully three times (rate() needs two samples).

    Counted over a window rather than by the last scrape: on a busy machine one scrape may time
    out, which must not fail the test."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, f"prometheus exited:\n{log.read_text()}"
        try:
            # Prometheus listens before it is ready, and answers its API with a plain-text 503
            # until then (seen on a slow machine): ask only once it says it is ready.
            ready = httpx.get(f"{url}/-/ready", timeout=10).status_code == 200
            scraped = query(url, f"sum_over_time(up[{WINDOW}]) >= 3") if ready else []
        except httpx.TransportError:
            scraped = []
        if len(scraped) == targets:
            return
        time.sleep(0.25)
    raise AssertionError(f"prometheus did not scrape the {targets} targets:\n{log.read_text()}")


def test_prometheus_scrapes_every_service_and_tgi_server(prometheus: str) -> None:
    up = query(prometheus, f"max_over_time(up[{WINDOW}])")
    found = {(r["metric"]["job"], r["metric"].get("service", r["metric"].get("model"))) for r in up}
    assert found == {
        ("harmrank", "gateway"),
        ("harmrank", "generator"),
        ("harmrank", "judge"),
        ("harmrank", "metrics"),
        ("tgi", "mistral-7b"),
        ("tgi", "mpt-7b"),
        ("tgi", "stablelm-alpha-7b"),
    }
    assert all(r["value"][1] == "1" for r in up)


# Series that exist only once something went wrong: the stack here runs without failures, so
# their queries must be valid but come back empty (tests/gateway/test_provider_failures.py
# checks that the gauge appears on /metrics when tasks fail).
ONLY_ON_FAILURE = ("harmrank_tasks_failed", "harmrank_report_missing_rankings_total")


@pytest.mark.parametrize("panel_query", promql_queries(), ids=lambda q: f"{q.panel}:{q.text[:40]}")
def test_every_dashboard_query_returns_series(prometheus: str, panel_query: Query) -> None:
    found = query(prometheus, fill_promql(panel_query.text))
    if any(name in panel_query.text for name in ONLY_ON_FAILURE):
        assert found == [], panel_query  # no task failed in this stack's run
    else:
        assert found, panel_query


def test_the_service_variable_lists_every_service(prometheus: str) -> None:
    response = httpx.get(
        f"{prometheus}/api/v1/label/service/values",
        params={"match[]": "harmrank_http_requests_total"},
        timeout=10,
    )
    assert set(response.json()["data"]) >= {"gateway", "generator", "judge"}


def test_the_shipped_config_scrapes_the_same_jobs() -> None:
    shipped = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in shipped["scrape_configs"]}
    assert set(jobs) == {"harmrank", "tgi"}
    services = {c["labels"]["service"] for c in jobs["harmrank"]["static_configs"]}
    assert services == {"gateway", "generator", "judge", "metrics"}
    models = {c["labels"]["model"] for c in jobs["tgi"]["static_configs"]}
    assert models == {"mistral-7b", "mpt-7b", "stablelm-alpha-7b"}
    assert list(Path(ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))
