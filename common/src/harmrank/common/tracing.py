"""OpenTelemetry traces, decided in one place: each service's app factory, HTTP client and
database engine call the hooks here, and the gateway's worker opens one span per task.

Tracing is on when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is
set, exporting batches over OTLP/HTTP, or when the process already runs an SDK tracer provider
(``opentelemetry-instrument``, or a test's in-memory exporter). Otherwise nothing is instrumented
at all: no middleware, no transport wrapper, no span objects, no extra headers.

W3C trace context (``traceparent``) travels on every hop: the httpx instrumentation writes it
on each outgoing call and the FastAPI instrumentation reads it, so gateway, generator, judge and
their upstreams (TGI, the providers) share one trace; a run stores the context it was created
in, and each task span of the worker continues it.

What spans carry: routes, methods, status codes, hosts, SQL statements with placeholders (never
their parameters) and harmrank's ids. Never a header (keys travel in headers) and never a body
(prompts and responses travel in bodies); the OTel instrumentations record neither by default,
and the test of a whole run checks every attribute.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from typing import Any

import httpx
from fastapi import FastAPI
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, SpanKind

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
# Probes and scrapes every few seconds would drown the traces that matter. Patterns are searched
# in the whole URL, so each is anchored to the path's end: a bare "metrics" would also match the
# metrics service's host name and leave it untraced.
EXCLUDED_ROUTES = ",".join(rf"/{route}(?:\?|$)" for route in ("healthz", "readyz", "metrics"))
TRACER_NAME = "harmrank"


def tracer_provider() -> TracerProvider | None:
    """The SDK provider spans go to, set up on first use; None when tracing is off."""
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        return current
    if not any(os.environ.get(name) for name in ENDPOINT_VARIABLES):
        return None
    # Imported only when exporting: the exporter pulls in protobuf.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    name = os.environ.get("OTEL_SERVICE_NAME", "harmrank")
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return provider


def instrument_app(app: FastAPI, service: str) -> None:
    """Server spans for every request (but the probes), continuing an incoming traceparent."""
    provider = tracer_provider()
    if provider is None:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    def name_service(span: Span, _scope: dict[str, Any]) -> None:
        if span.is_recording():
            span.set_attribute("harmrank.service", service)

    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=provider,
        excluded_urls=EXCLUDED_ROUTES,
        server_request_hook=name_service,
        exclude_spans=["receive", "send"],
    )


def instrument_client(client: httpx.AsyncClient) -> None:
    """A client span per call (around its retries), with traceparent in the request."""
    provider = tracer_provider()
    if provider is None:
        return
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    HTTPXClientInstrumentor.instrument_client(client, tracer_provider=provider)


def instrument_engine(engine: Any) -> None:
    """Spans for the statements of an (async) SQLAlchemy engine: SQL text, never parameters."""
    provider = tracer_provider()
    if provider is None:
        return
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    sync_engine = getattr(engine, "sync_engine", engine)
    SQLAlchemyInstrumentor().instrument(
        engine=sync_engine, tracer_provider=provider, enable_commenter=False
    )


def current_traceparent() -> str | None:
    """The W3C traceparent of the span in progress (to store with work done later), if any."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")


@contextlib.contextmanager
def work_span(
    provider: TracerProvider,
    name: str,
    traceparent: str | None,
    attributes: Mapping[str, str | int],
) -> Iterator[None]:
    """A span for queued work, in the trace of the request that queued it (``traceparent``);
    ``provider`` is the one :func:`tracer_provider` answered when the worker started."""
    parent = propagate.extract({"traceparent": traceparent}) if traceparent else None
    tracer = provider.get_tracer(TRACER_NAME)
    with tracer.start_as_current_span(
        name, context=parent, kind=SpanKind.CONSUMER, attributes=dict(attributes)
    ):
        yield
