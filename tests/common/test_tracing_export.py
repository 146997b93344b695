"""Spans leave over OTLP/HTTP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (a receiver stand-in
decodes them with OpenTelemetry's own protobuf types), and logs carry the trace and request ids,
as JSON lines with ``HARMRANK_LOG_FORMAT=json``."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from tests.conftest import ServeApp
from tests.subprocess_modules import run_module

from harmrank.common import logs
from harmrank.common.request_id import request_id_scope

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def receiver(serve_app: ServeApp) -> tuple[str, list[ExportTraceServiceRequest]]:
    received: list[ExportTraceServiceRequest] = []

    async def traces(request: Request) -> Response:
        assert request.headers["content-type"] == "application/x-protobuf"
        received.append(ExportTraceServiceRequest.FromString(await request.body()))
        return Response(b"", media_type="application/x-protobuf")

    return serve_app(Starlette(routes=[Route("/v1/traces", traces, methods=["POST"])])), received


def test_spans_are_exported_over_otlp_when_an_endpoint_is_set(
    receiver: tuple[str, list[ExportTraceServiceRequest]],
) -> None:
    url, received = receiver
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env |= {"OTEL_EXPORTER_OTLP_ENDPOINT": url, "OTEL_SERVICE_NAME": "harmrank-metrics"}
    done = run_module("tests.common.otlp_export", env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    spans = [
        (resource, span)
        for request in received
        for resource in request.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    ]
    assert spans
    names = {span.name for _, span in spans}
    # The host is "metrics": the probe exclusions must not swallow the metrics service.
    assert any(name.startswith("GET") for name in names), names
    services = {
        a.value.string_value
        for resource, _ in spans
        for a in resource.resource.attributes
        if a.key == "service.name"
    }
    assert services == {"harmrank-metrics"}


def _record(message: str) -> logging.LogRecord:
    return logging.LogRecord("harmrank.test", logging.WARNING, __file__, 1, message, None, None)


def test_json_logs_carry_the_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(logs.FORMAT_VARIABLE, "json")
    assert logs.log_format() == "json"
    context = logs.ContextFilter("gateway")
    with request_id_scope("req-123"), logs.log_context(run_id=7, task_id=42):
        record = _record("claimed")
        context.filter(record)
    event = json.loads(logs.JsonFormatter().format(record))
    assert event["service"] == "gateway"
    assert event["request_id"] == "req-123"
    assert (event["run_id"], event["task_id"]) == (7, 42)
    assert event["message"] == "claimed"
    assert event["level"] == "warning"
    assert "trace_id" not in event  # no span in progress


def test_logs_carry_the_trace_id_of_the_span_in_progress() -> None:
    from opentelemetry.sdk.trace import TracerProvider

    tracer = TracerProvider().get_tracer("test")  # a local provider: the global stays unset
    with tracer.start_as_current_span("work") as span:
        record = _record("inside")
        logs.ContextFilter("judge").filter(record)
    assert record.trace_id == format(span.get_span_context().trace_id, "032x")  # type: ignore[attr-defined]
    assert len(record.span_id) == 16  # type: ignore[attr-defined]


def test_an_unknown_log_format_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(logs.FORMAT_VARIABLE, "yaml")
    with pytest.raises(ValueError, match="HARMRANK_LOG_FORMAT='yaml': use one of text, json"):
        logs.log_format()
