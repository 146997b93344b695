"""Run as ``python -m tests.common.otlp_export URL`` with OTEL_EXPORTER_OTLP_ENDPOINT set: serve
one request through a service app, flush, and exit (test_tracing_export.py reads what arrived)."""

from __future__ import annotations

import asyncio
import sys

import httpx
from opentelemetry import trace

from harmrank.metrics.app import create_app


async def main() -> None:
    app = create_app()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://metrics") as client:
            await client.get("/v1/does-not-exist")
    provider = trace.get_tracer_provider()
    provider.force_flush()  # type: ignore[attr-defined]
    provider.shutdown()  # type: ignore[attr-defined]


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
