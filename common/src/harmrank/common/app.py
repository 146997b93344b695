"""The one way a harmrank service builds its FastAPI app.

Every service gets the same error contract, request ids, body-size limit, Prometheus
``/metrics``, ``/healthz`` and ``/readyz``; a service adds its routers and its lifespan.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, FastAPI
from prometheus_client import CollectorRegistry
from starlette.middleware import Middleware

from harmrank.common.body_limit import BodyLimitMiddleware
from harmrank.common.errors import ErrorBody, register_error_handlers
from harmrank.common.health import ReadinessCheck, health_router
from harmrank.common.heap import tuning_after_start
from harmrank.common.logs import configure_logging
from harmrank.common.request_id import RequestIdMiddleware
from harmrank.common.settings import ServiceSettings
from harmrank.common.telemetry import (
    HttpTelemetry,
    Lifespan,
    TelemetryMiddleware,
    leaving_the_sums,
    metrics_endpoint,
)
from harmrank.common.tracing import instrument_app

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in ((413, "Body too large"), (422, "Invalid request"), (500, "Internal error"))
}


def create_service_app(
    *,
    service: str,
    settings: ServiceSettings,
    routers: Sequence[APIRouter],
    version: str = "0.1.0",
    description: str = "",
    lifespan: Lifespan | None = None,
    readiness: dict[str, ReadinessCheck] | None = None,
    middleware: Sequence[Middleware] = (),
) -> FastAPI:
    """Build a service app with the shared middleware, error handlers and operational routes."""
    app = FastAPI(
        # FastAPI's own OpenTelemetry is off: tracing is ``instrument_app``'s (below), request
        # metrics are Prometheus's, and the native layer asked the global providers whether it
        # was on at every request (an environment lookup each), even with nothing configured.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        title=f"harmrank {service}",
        version=version,
        description=description,
        lifespan=leaving_the_sums(tuning_after_start(lifespan)),
        responses=ERROR_RESPONSES,
    )
    registry = CollectorRegistry()
    app.state.settings = settings
    app.state.registry = registry
    app.state.telemetry = HttpTelemetry(service, registry)
    app.state.readiness = dict(readiness or {})
    register_error_handlers(app)
    app.include_router(health_router(service))
    app.add_api_route("/metrics", metrics_endpoint(registry), include_in_schema=False)
    for router in routers:
        app.include_router(router)
    # A service's own middleware (auth, say) runs inside the shared ones, so its answers are
    # counted, carry a request id and obey the body limit like any other.
    for extra in reversed(middleware):
        app.add_middleware(extra.cls, *extra.args, **extra.kwargs)
    # Added last so it runs first: the request id exists before anything logs or fails.
    app.add_middleware(TelemetryMiddleware, telemetry=app.state.telemetry, router_app=app)
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        setting=type(settings).env_name("max_body_bytes"),
    )
    app.add_middleware(RequestIdMiddleware)
    instrument_app(app, service)
    configure_logging(service, settings.log_level)
    return app
