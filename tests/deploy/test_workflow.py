"""The CI smoke workflow's steps that can run here: its Prometheus query step is run as written
against a real Prometheus (Debian's ``prometheus`` package), and its smoke step installs no
development dependencies."""

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
from tests.deploy.conftest import ROOT

# PyYAML ships no type stubs; imported by name as the generator does.
yaml: Any = importlib.import_module("yaml")

WORKFLOW = ROOT / ".github" / "workflows" / "smoke.yml"
PROMETHEUS_IN_CI = "http://localhost:9090"


def step(name: str) -> str:
    (job,) = yaml.safe_load(WORKFLOW.read_text())["jobs"].values()
    (found,) = [s["run"] for s in job["steps"] if s.get("name") == name]
    return str(found)


def _start(folder: Path, service: str) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("Prometheus is needed: apt-get install prometheus", pytrace=False)
    port = free_port()
    # Prometheus scrapes itself, labelled as the workflow's compose stack labels the gateway.
    target = {"targets": [f"127.0.0.1:{port}"], "labels": {"service": service}}
    config = {
        "global": {"scrape_interval": "1s"},
        "scrape_configs": [{"job_name": "harmrank", "static_configs": [target]}],
    }
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={folder / 'prometheus.yml'}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return process, f"http://127.0.0.1:{port}"


def _wait_for_a_scrape(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, "prometheus exited"
        try:
            response = httpx.get(f"{url}/api/v1/query", params={"query": "up"}, timeout=5)
            if response.status_code == 200 and response.json()["data"]["result"]:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    raise AssertionError("prometheus scraped nothing")


@pytest.fixture
def prometheus(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    process, url = _start(tmp_path, request.param)
    try:
        _wait_for_a_scrape(url, process)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def run_query_step(prometheus: str) -> subprocess.CompletedProcess[str]:
    script = step("Prometheus scrapes the services")
    assert PROMETHEUS_IN_CI in script
    script = script.replace(PROMETHEUS_IN_CI, prometheus)
    return subprocess.run(
        ["bash", "-e", "-c", script], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize("prometheus", ["gateway"], indirect=True)
def test_the_query_step_passes_when_the_gateway_is_up(prometheus: str) -> None:
    result = run_query_step(prometheus)
    assert result.returncode == 0, result.stderr
    assert "'gateway': '1'" in result.stdout


@pytest.mark.parametrize("prometheus", ["judge"], indirect=True)
def test_the_query_step_fails_without_the_gateway(prometheus: str) -> None:
    result = run_query_step(prometheus)
    assert result.returncode == 1, result.stderr
    assert "'judge': '1'" in result.stdout


def test_the_smoke_step_installs_no_development_dependencies() -> None:
    command = step("Smoke test")
    assert "uv run --frozen --no-dev harmrank smoke" in command
