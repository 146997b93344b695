"""``harmrank serve SERVICE --workers N``: /metrics counts the requests of every process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.conftest import free_port

REQUESTS = 24
RBO = {"s": ["a", "b", "c"], "t": ["c", "b", "a"], "p": 0.9}


def _counted(client: httpx.Client) -> tuple[float, float]:
    """Requests counted for /v1/rbo, and requests in flight, as one scrape reports them."""
    text = client.get("/metrics").text
    counted = in_flight = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "harmrank_http_requests_total":
                counted += sample.value if sample.labels["route"] == "/v1/rbo" else 0
            if sample.name == "harmrank_http_requests_in_flight":
                in_flight += sample.value
    return counted, in_flight


def _writers(directory: Path) -> set[str]:
    return {path.name.rsplit("_", 1)[-1] for path in directory.glob("counter_*.db")}


def _serve(port: int, directory: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HARMRANK_")}
    env |= {"PROMETHEUS_MULTIPROC_DIR": str(directory), "HARMRANK_METRICS_LOG_LEVEL": "warning"}
    command = [sys.executable, "-m", "harmrank.cli.main", "serve", "metrics"]
    options = ["--workers", "2", "--port", str(port)]
    return subprocess.Popen([*command, *options], env=env, stdin=subprocess.DEVNULL)


def _wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    # Two processes each import numpy, scipy and matplotlib: on a loaded 2-core machine that has
    # taken over a minute, so the bound is generous (it only matters when something is wrong).
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert process.poll() is None, "the service exited"
        try:
            if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    pytest.fail("the service did not become ready")


def test_every_scrape_counts_the_requests_of_every_process(tmp_path: Path) -> None:
    (tmp_path / "counter_1.db").write_bytes(b"left by an earlier run")
    port = free_port()
    process = _serve(port, tmp_path)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, process)
        # A new connection each time, so the kernel spreads them over both processes; /readyz
        # answers once the first is up, so go on (a bounded while) until the second answers too.
        sent, deadline = 0, time.monotonic() + 60
        while sent < REQUESTS or (len(_writers(tmp_path)) < 2 and time.monotonic() < deadline):
            assert httpx.post(f"{url}/v1/rbo", json=RBO, timeout=30).status_code == 200
            sent += 1
        assert len(_writers(tmp_path)) == 2, "two processes keep values in the shared directory"
        for _ in range(8):  # whichever process answers the scrape
            with httpx.Client(base_url=url, timeout=30) as client:
                counted, in_flight = _counted(client)
            assert counted == sent
            assert in_flight == 1  # the scrape itself, counted once over both processes
        assert list(tmp_path.glob("gauge_livesum_*.db"))
    finally:
        process.terminate()
        process.wait(30)
    assert tmp_path.exists(), "a directory given by the environment is kept"
    # Processes that exited count no more requests in flight.
    assert not list(tmp_path.glob("gauge_livesum_*.db"))
