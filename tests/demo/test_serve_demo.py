"""``harmrank serve --demo``: the stack with the demo backends and dataset stays up for
exploring, on loopback and without a token whatever the environment says."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml
from tests.conftest import free_port

SERVICES = ("gateway", "generator", "judge", "metrics")
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "demo" / "run.yaml"


def wait_for_dataset(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            names = [d["name"] for d in httpx.get(f"{url}/v1/datasets").json()["items"]]
            if "demo" in names:
                return
        except (httpx.TransportError, KeyError, ValueError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"the demo dataset never appeared:\n{log.read_text()}")


def test_serve_demo_runs_the_example_with_no_token_on_loopback(tmp_path: Path) -> None:
    ports = {service: free_port() for service in SERVICES}
    env = {k: v for k, v in os.environ.items() if not k.startswith("HARMRANK_")}
    env |= {f"HARMRANK_{s.upper()}_PORT": str(p) for s, p in ports.items()}
    # Settings that would expose a normal stack and ask for a token: the demo overrides both.
    env |= {"HARMRANK_GATEWAY_HOST": "0.0.0.0", "HARMRANK_GATEWAY_API_TOKENS": '["secret"]'}
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "harmrank.cli.main", "serve", "--demo"],
            env=env | {"COLUMNS": "200"},
            cwd=tmp_path,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{ports['gateway']}"
    try:
        wait_for_dataset(url, process, log)
        spec = yaml.safe_load(EXAMPLE.read_text())
        created = httpx.post(f"{url}/v1/runs", json=spec, timeout=30)
        assert created.status_code == 201, created.text
        assert httpx.get(f"{url}/docs").status_code == 200
        # Bound to 127.0.0.1 itself: another loopback address reaches a 0.0.0.0 listener only.
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.2:{ports['gateway']}/healthz")
        assert (tmp_path / "harmrank-demo.db").is_file()
        process.send_signal(signal.SIGINT)
        assert process.wait(60) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
