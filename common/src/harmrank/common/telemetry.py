"""Prometheus telemetry shared by every service: request count and latency by route template.

Each app gets its own ``CollectorRegistry`` (not the process-global one) so several apps can
live in one process, as they do in tests and in the all-in-one local mode. Labels are route
templates (``/v1/runs/{run_id}``), never raw paths, so ids cannot explode cardinality.

Several processes serving one service on one port (``harmrank serve SERVICE --workers N``)
would each count only the requests they answered, and a scrape would see whichever process
took it. With ``PROMETHEUS_MULTIPROC_DIR`` set (``serve --workers`` sets it), prometheus_client
keeps every process's values in files of that directory, and ``/metrics`` sums them.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol, TypeVar

from fastapi import FastAPI, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import Metric
from starlette.datastructures import MutableHeaders
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from harmrank.common.asgi import HttpMiddleware, on_response_start

MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


class Lifespan(Protocol):
    def __call__(self, app: FastAPI) -> AbstractAsyncContextManager[None]: ...


MetricT = TypeVar("MetricT", Counter, Gauge, Histogram)


def children(metric: MetricT) -> Callable[..., MetricT]:
    """``metric.labels`` with each child looked up once. ``labels`` checks and converts every
    value and takes the metric's lock on each call (~1 µs), and a request called it about ten
    times; a cached child is a dictionary lookup. Label values are small fixed sets here (route
    templates, model names, outcomes), so the cache stays as small as the metric itself."""
    return functools.cache(metric.labels)


LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
UNMATCHED_ROUTE = "<unmatched>"


class HttpTelemetry:
    """The request metrics of one service, registered in that service's registry."""

    def __init__(self, service: str, registry: CollectorRegistry) -> None:
        self.service = service
        self.registry = registry
        self.requests = Counter(
            "harmrank_http_requests_total",
            "HTTP requests served, by route template and status code.",
            ["service", "method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "harmrank_http_request_duration_seconds",
            "Time to serve an HTTP request, by route template.",
            ["service", "method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.in_flight = Gauge(
            "harmrank_http_requests_in_flight",
            "HTTP requests being served now.",
            ["service"],
            registry=registry,
            multiprocess_mode="livesum",  # several processes: the sum over the living ones
        )
        self.in_flight_here = self.in_flight.labels(service)
        self._requests = children(self.requests)
        self._latency = children(self.latency)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self._requests(self.service, method, route, status).inc()
        self._latency(self.service, method, route).observe(seconds)


def route_template(app: ASGIApp, scope: Scope) -> str:
    """The path template of the route that served this request, or a fixed placeholder."""
    # The router records the matched route in the (shared) scope; match again only when a
    # middleware answered before routing (a 413, say).
    served = scope.get("route")
    if served is not None and hasattr(served, "path"):
        return str(served.path)
    for route in getattr(app, "routes", ()):
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return str(getattr(route, "path", UNMATCHED_ROUTE))
    return UNMATCHED_ROUTE


class TelemetryMiddleware(HttpMiddleware):
    """Counts and times every HTTP request by route template and status."""

    def __init__(self, app: ASGIApp, telemetry: HttpTelemetry, router_app: FastAPI) -> None:
        super().__init__(app)
        self.telemetry = telemetry
        self.router_app = router_app

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        status = 500
        in_flight = self.telemetry.in_flight_here
        in_flight.inc()

        def note_status(message: Message, _: MutableHeaders) -> None:
            nonlocal status
            status = int(message["status"])

        send_with_status = on_response_start(send, note_status)
        try:
            await self.app(scope, receive, send_with_status)
        finally:
            in_flight.dec()
            route = route_template(self.router_app, scope)
            self.telemetry.observe(scope["method"], route, status, time.perf_counter() - started)


class AllProcesses:
    """What a scrape shows when several processes serve the service: every metric summed over
    the processes from the shared directory, then this process's own collectors (the gateway's
    reading of the task table), which report shared state anyway."""

    def __init__(self, registry: CollectorRegistry, directory: str) -> None:
        self.registry = registry
        self.directory = directory

    def collect(self) -> Iterator[Metric]:
        files = multiprocess.MultiProcessCollector(None, path=self.directory)  # type: ignore[no-untyped-call]
        shared = list(files.collect())  # type: ignore[no-untyped-call]
        yield from shared
        summed = {metric.name for metric in shared}
        yield from (m for m in self.registry.collect() if m.name not in summed)


def leaving_the_sums(lifespan: Lifespan | None) -> Lifespan | None:
    """With several processes, ``lifespan`` and then, as the process shuts down, its removal
    from the sums over living processes (requests in flight). A killed process stays in them
    until the directory is emptied at the next start."""
    directory = os.environ.get(MULTIPROCESS_DIR_ENV)
    if not directory:
        return lifespan

    @asynccontextmanager
    async def wrapped(app: FastAPI) -> AsyncIterator[None]:
        try:
            if lifespan is None:
                yield
            else:
                async with lifespan(app):
                    yield
        finally:
            multiprocess.mark_process_dead(os.getpid(), directory)  # type: ignore[no-untyped-call]

    return wrapped


def metrics_endpoint(registry: CollectorRegistry) -> Callable[[Request], Awaitable[Response]]:
    directory = os.environ.get(MULTIPROCESS_DIR_ENV)
    source = AllProcesses(registry, directory) if directory else registry

    async def metrics(_: Request) -> Response:
        """Prometheus metrics of this service."""
        return Response(generate_latest(source), media_type=CONTENT_TYPE_LATEST)

    return metrics
