"""A whole run on the local stack with an in-memory span exporter, in a process of its own (a
tracer provider is global to a process and is set once): ``python -m tests.deploy.traced_run
OUT.json`` writes the smoke test's outcome and every finished span. Read by test_traces.py."""

from __future__ import annotations

import json
import sys
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


def _span(span: ReadableSpan) -> dict[str, Any]:
    context = span.get_span_context()
    assert context is not None
    return {
        "name": span.name,
        "kind": span.kind.name,
        "trace_id": format(context.trace_id, "032x"),
        "span_id": format(context.span_id, "016x"),
        "parent_id": format(span.parent.span_id, "016x") if span.parent else None,
        "attributes": dict(span.attributes or {}),
        "events": [dict(e.attributes or {}) | {"name": e.name} for e in span.events],
        "links": [format(link.context.trace_id, "032x") for link in span.links],
    }


def main(out: str) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    # Imported after the provider is set, as a process started with tracing on would be.
    from tests.deploy.stack import JUDGES, TOKEN, running_stack

    from harmrank.cli.smoke import smoke

    lines: list[str] = []
    with running_stack() as stack:
        code = smoke(stack.gateway, TOKEN, 60, judges=list(JUDGES), echo=lines.append)
        tgi = list(stack.tgi.values())
    spans = [_span(s) for s in exporter.get_finished_spans()]
    with open(out, "w") as file:
        json.dump({"code": code, "lines": lines, "tgi": tgi, "spans": spans}, file, default=str)


if __name__ == "__main__":
    main(sys.argv[1])
