"""Traces across the services: a whole run on the local stack (``traced_run.py``, in a process
of its own with an in-memory span exporter) makes one trace that spans the gateway, the worker's
tasks, the generator with its TGI calls and the judge with its provider calls; no span holds a
key, the API token or a prompt's text. Without an OTLP endpoint nothing is instrumented."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from tests.deploy.stack import TOKEN
from tests.judge.conftest import KEYS
from tests.subprocess_modules import run_module

from harmrank.cli.smoke import PROMPTS_CSV
from harmrank.common import tracing
from harmrank.common.http import create_client

Span = dict[str, Any]


@cache
def traced_run() -> dict[str, Any]:
    out = Path(os.environ.get("TMPDIR", "/tmp")) / f"harmrank-traces-{os.getpid()}.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "HARMRANK_"))}
    done = run_module("tests.deploy.traced_run", str(out), env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    try:
        found: dict[str, Any] = json.loads(out.read_text())
    finally:
        out.unlink(missing_ok=True)
    assert found["code"] == 0, found["lines"]
    return found


def the_runs_trace(spans: list[Span]) -> list[Span]:
    (create,) = [
        s
        for s in spans
        if s["kind"] == "SERVER"
        and s["name"] == "POST /v1/runs"
        and s["attributes"].get("harmrank.service") == "gateway"
    ]
    return [s for s in spans if s["trace_id"] == create["trace_id"]]


def ancestors(span: Span, by_id: dict[str, Span]) -> Iterator[Span]:
    while span["parent_id"] in by_id:
        span = by_id[span["parent_id"]]
        yield span


def calls_to(spans: list[Span], fragment: str) -> list[Span]:
    return [
        s
        for s in spans
        if s["kind"] == "CLIENT" and any(fragment in str(v) for v in s["attributes"].values())
    ]


def test_one_trace_spans_gateway_worker_generator_and_judge() -> None:
    spans = the_runs_trace(traced_run()["spans"])
    by_id = {s["span_id"]: s for s in spans}
    services = {s["attributes"].get("harmrank.service") for s in spans if s["kind"] == "SERVER"}
    assert {"gateway", "generator", "judge"} <= services
    tasks = [s for s in spans if s["name"].startswith("task ")]
    assert {s["attributes"]["harmrank.stage"] for s in tasks} == {"generate", "judge", "score"}
    assert all(s["attributes"]["harmrank.run_id"] for s in tasks)

    def served_by(span: Span) -> set[str]:
        return {a["attributes"].get("harmrank.service", "") for a in ancestors(span, by_id)}

    tgi = [c for url in traced_run()["tgi"] for c in calls_to(spans, url)]
    assert tgi, "the generator's calls to TGI are in the run's trace"
    assert all("generator" in served_by(c) for c in tgi)
    for path in ("/v1/chat/completions", "/v1/messages"):  # OpenAI, Anthropic
        provider = calls_to(spans, path)
        assert provider, path
        assert all("judge" in served_by(c) for c in provider)
        assert all(
            any(a["name"].startswith("task judge") for a in ancestors(c, by_id)) for c in provider
        )


def test_no_span_holds_a_key_the_token_or_a_prompt() -> None:
    prompts = [row["text"] for row in csv.DictReader(io.StringIO(PROMPTS_CSV))]
    secrets = [*KEYS.values(), TOKEN, *prompts]
    spans = traced_run()["spans"]
    assert len(spans) > 50
    for span in spans:
        values = [span["name"], *map(str, span["attributes"].values())]
        values += [str(v) for event in span["events"] for v in event.values()]
        for value in values:
            assert not any(s in value for s in secrets), (span["name"], value)


def test_without_an_endpoint_nothing_is_instrumented(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in tracing.ENDPOINT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert not isinstance(trace.get_tracer_provider(), TracerProvider)
    assert tracing.tracer_provider() is None
    app = FastAPI()
    tracing.instrument_app(app, "demo")
    assert not getattr(app, "_is_instrumented_by_opentelemetry", False)
    client = create_client("http://127.0.0.1:1", timeout=1)
    assert not getattr(client, "_is_instrumented_by_opentelemetry", False)
    assert tracing.current_traceparent() is None
