"""The shared service app over real HTTP: error shape, limits, probes, telemetry, request ids."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from prometheus_client import CollectorRegistry, Counter
from pydantic import BaseModel

from harmrank.common.app import create_service_app
from harmrank.common.errors import NotFound, UpstreamUnavailable
from harmrank.common.settings import ServiceSettings
from harmrank.common.telemetry import children

ServeApp = Callable[[FastAPI], str]


class Echo(BaseModel):
    value: int


def make_app(ready: bool = True) -> FastAPI:
    router = APIRouter()

    @router.get("/items/{item_id}")
    async def get_item(item_id: int) -> dict[str, int]:
        if item_id == 0:
            raise NotFound("item 0 does not exist")
        if item_id == 1:
            raise UpstreamUnavailable("tgi-mistral: overloaded")
        if item_id == 2:
            raise RuntimeError("secret-key-sk-123 leaked in an exception")
        return {"item": item_id}

    @router.post("/echo")
    async def echo(body: Echo) -> Echo:
        return body

    async def database() -> str | None:
        return None if ready else "database unreachable"

    return create_service_app(
        service="demo",
        settings=ServiceSettings(max_body_bytes=1000),
        routers=[router],
        readiness={"database": database},
    )


@pytest.fixture
def base_url(serve_app: ServeApp) -> str:
    return serve_app(make_app())


def get(url: str, **kwargs: object) -> httpx.Response:
    return httpx.get(url, timeout=5, **kwargs)  # type: ignore[arg-type]


def test_errors_share_one_shape(base_url: str) -> None:
    cases = {
        "/items/0": (404, "not_found"),
        "/items/1": (503, "upstream_unavailable"),
        "/items/abc": (422, "validation"),
        "/no-such-route": (404, "not_found"),
    }
    for path, (status, error_type) in cases.items():
        response = get(base_url + path)
        assert response.status_code == status, path
        body = response.json()
        assert body["error_type"] == error_type
        assert isinstance(body["error"], str)
        assert body["error"]


def test_validation_error_names_the_field(base_url: str) -> None:
    response = httpx.post(base_url + "/echo", json={"value": "x"}, timeout=5)
    assert response.status_code == 422
    assert response.json()["error"].startswith("body.value:")


def test_unhandled_error_is_500_without_its_text(base_url: str) -> None:
    response = get(base_url + "/items/2")
    assert response.status_code == 500
    assert response.json() == {"error": "internal error", "error_type": "internal"}
    assert "secret" not in response.text


def test_body_over_limit_is_413(base_url: str) -> None:
    response = httpx.post(base_url + "/echo", content=b"x" * 5000, timeout=5)
    assert response.status_code == 413
    assert response.json() == {
        "error": "the request body of 5,000 bytes is larger than this service accepts: its "
        "limit is 1,000 bytes (set by HARMRANK_MAX_BODY_BYTES)",
        "error_type": "payload_too_large",
    }


def test_chunked_body_over_limit_is_413(base_url: str) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b'{"value": 1' + b" " * 200

    response = httpx.post(base_url + "/echo", content=chunks(), timeout=5)
    assert response.status_code == 413
    # No length declared: what had arrived when the limit was passed.
    error = response.json()["error"]
    assert error.startswith("the request body streamed without a length (")
    assert error.endswith(
        "bytes so far) is larger than this service accepts: its limit is "
        "1,000 bytes (set by HARMRANK_MAX_BODY_BYTES)"
    )


def test_probes(base_url: str, serve_app: ServeApp) -> None:
    assert get(base_url + "/healthz").json()["status"] == "ok"
    assert get(base_url + "/readyz").json()["checks"] == {"database": "ok"}
    not_ready = serve_app(make_app(ready=False))
    response = get(not_ready + "/readyz")
    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "database unreachable"}
    assert get(not_ready + "/healthz").status_code == 200


def test_request_id_is_echoed_or_made(base_url: str) -> None:
    given = get(base_url + "/items/5", headers={"X-Request-Id": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    made = get(base_url + "/items/5")
    assert len(made.headers["x-request-id"]) >= 16


def test_metrics_label_routes_by_template(base_url: str) -> None:
    for item in (5, 6, 7):
        get(f"{base_url}/items/{item}")
    get(base_url + "/items/0")
    text = get(base_url + "/metrics").text
    assert (
        'harmrank_http_requests_total{method="GET",route="/items/{item_id}",'
        'service="demo",status="200"} 3.0'
    ) in text
    assert 'route="/items/{item_id}",service="demo",status="404"} 1.0' in text
    assert "/items/5" not in text
    assert "harmrank_http_request_duration_seconds_bucket" in text
    assert "harmrank_http_requests_in_flight" in text


def test_cached_children_are_the_metrics_own() -> None:
    registry = CollectorRegistry()
    counter = Counter("demo_total", "Demo.", ["route", "status"], registry=registry)
    child = children(counter)
    child("/a", 200).inc()
    child("/a", 200).inc()
    assert child("/a", 200) is counter.labels("/a", "200")
    assert registry.get_sample_value("demo_total", {"route": "/a", "status": "200"}) == 2
