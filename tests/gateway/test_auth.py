"""Bearer tokens over real HTTP: every (token kind, method, route kind, reads required) case."""

from __future__ import annotations

import hmac
import itertools
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from pydantic import SecretStr, ValidationError
from tests.conftest import ServeApp

from harmrank.common.app import create_service_app
from harmrank.gateway import auth
from harmrank.gateway.settings import GatewaySettings

WRITE = ["write-token-0a1b2c", "write-token-3d4e5f"]
READ = ["read-token-6a7b8c", "read-token-9d0e1f", "read-token-2a3b4c"]
TOKENS = {"none": None, "wrong": "not-a-token", "read": READ[1], "write": WRITE[1]}


def probe_app(settings: GatewaySettings) -> FastAPI:
    """An app built like the gateway, with one route of each kind behind the middleware."""
    router = APIRouter()

    @router.get("/v1/things")
    async def read_things() -> dict[str, str]:
        return {"ok": "read"}

    @router.post("/v1/things")
    async def write_thing() -> dict[str, str]:
        return {"ok": "write"}

    @router.get("/annotate/api/state")
    async def annotate_read() -> dict[str, str]:
        return {"ok": "own auth"}

    @router.post("/annotate/api/items/1/ranking")
    async def annotate_write() -> dict[str, str]:
        return {"ok": "own auth"}

    return create_service_app(
        service="gateway",
        settings=settings,
        routers=[router],
        middleware=[auth.token_middleware(settings)],
    )


def settings_for(reads_required: bool) -> GatewaySettings:
    return GatewaySettings(
        api_tokens=[SecretStr(t) for t in WRITE],
        read_tokens=[SecretStr(t) for t in READ],
        require_token_for_reads=reads_required,
    )


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[bool, str]]:
    from tests.conftest import LiveServer

    live = {flag: LiveServer(probe_app(settings_for(flag))) for flag in (False, True)}
    for server in live.values():
        server.start()
    yield {flag: server.url for flag, server in live.items()}
    for server in live.values():
        server.stop()


ROUTES = {
    "api": "/v1/things",
    "own_auth": "/annotate/api/state",
    "probe": "/healthz",
    "metrics": "/metrics",
    "openapi": "/openapi.json",
    "docs": "/docs",
}
OWN_AUTH_WRITE = "/annotate/api/items/1/ranking"


def expected(token: str, method: str, route: str, reads_required: bool) -> int:
    if route != "api":
        return 200
    if method == "POST":
        return {"none": 401, "wrong": 401, "read": 403, "write": 200}[token]
    if reads_required and token in ("none", "wrong"):
        return 401
    return 200


CASES = [
    (token, method, route, reads)
    for token, method, route, reads in itertools.product(
        TOKENS, ("GET", "POST"), ROUTES, (False, True)
    )
    if method == "GET" or route in ("api", "own_auth")
]


@pytest.mark.parametrize(("token", "method", "route", "reads_required"), CASES)
def test_the_access_table(
    servers: dict[bool, str], token: str, method: str, route: str, reads_required: bool
) -> None:
    given = TOKENS[token]
    headers = {"Authorization": f"Bearer {given}"} if given else {}
    path = OWN_AUTH_WRITE if (method, route) == ("POST", "own_auth") else ROUTES[route]
    answer = httpx.request(method, servers[reads_required] + path, headers=headers, timeout=10)
    status = expected(token, method, route, reads_required)
    assert answer.status_code == status, answer.text
    if status == 401:
        assert answer.headers["www-authenticate"] == 'Bearer realm="harmrank"'
        assert answer.json() == {
            "error": auth.WRITE_REQUIRED if method == "POST" else auth.READ_REQUIRED,
            "error_type": "unauthorized",
        }
    if status == 403:
        assert answer.json() == {"error": "this token may only read", "error_type": "forbidden"}
        assert "www-authenticate" not in answer.headers
    if status in (401, 403):
        assert "x-request-id" in answer.headers  # answered inside the shared middleware


def test_without_tokens_everything_is_open(serve_app: ServeApp) -> None:
    url = serve_app(probe_app(GatewaySettings()))
    assert httpx.post(url + "/v1/things", timeout=10).status_code == 200
    assert httpx.get(url + "/v1/things", timeout=10).status_code == 200


def test_the_exempt_prefixes_are_configurable(serve_app: ServeApp) -> None:
    settings = settings_for(True).model_copy(update={"auth_exempt_prefixes": ("/v1/",)})
    url = serve_app(probe_app(settings))
    assert httpx.post(url + "/v1/things", timeout=10).status_code == 200
    assert httpx.get(url + "/annotate/api/state", timeout=10).status_code == 401


@pytest.mark.parametrize("prefix", ["/annotate", "/annotate/"])
def test_an_exempt_prefix_covers_whole_path_segments_only(prefix: str) -> None:
    prefixes = (prefix,)
    assert auth.exempt_path("/annotate", prefixes)
    assert auth.exempt_path("/annotate/api/state", prefixes)
    assert not auth.exempt_path("/annotatex", prefixes)
    assert not auth.exempt_path("/annotate-admin/x", prefixes)
    assert not auth.exempt_path("/v1/annotate/x", prefixes)


def test_a_neighbour_of_an_exempt_prefix_still_needs_a_token(serve_app: ServeApp) -> None:
    settings = settings_for(True).model_copy(update={"auth_exempt_prefixes": ("/annotate",)})
    url = serve_app(probe_app(settings))
    assert httpx.get(url + "/annotate/api/state", timeout=10).status_code == 200
    for path in ("/annotatex", "/annotate-admin"):
        assert httpx.post(url + path, timeout=10).status_code == 401


@pytest.mark.parametrize("prefix", ["", "/", "//", "annotate/"])
def test_an_exempt_prefix_that_exempts_everything_or_nothing_is_refused(prefix: str) -> None:
    with pytest.raises(ValidationError, match="auth_exempt_prefixes"):
        GatewaySettings(api_tokens=[SecretStr(WRITE[0])], auth_exempt_prefixes=(prefix,))


@pytest.mark.parametrize("token", ["not-a-token", READ[0], WRITE[1]])
def test_every_configured_token_is_compared_in_constant_time(
    servers: dict[bool, str], monkeypatch: pytest.MonkeyPatch, token: str
) -> None:
    calls: list[tuple[Any, Any]] = []
    real = hmac.compare_digest

    def counting(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    # The servers run in threads of this process, so they see the patched function.
    monkeypatch.setattr(hmac, "compare_digest", counting)
    headers = {"Authorization": f"Bearer {token}"}
    httpx.post(servers[True] + "/v1/things", headers=headers, timeout=10)
    # Every token, write and read ones, whichever matched: no early exit.
    assert [b for _, b in calls] == [t.encode() for t in [*WRITE, *READ]]


def test_settings_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARMRANK_GATEWAY_API_TOKENS", '["w"]')
    monkeypatch.setenv("HARMRANK_GATEWAY_READ_TOKENS", '["r1", "r2"]')
    monkeypatch.setenv("HARMRANK_GATEWAY_REQUIRE_TOKEN_FOR_READS", "true")
    settings = GatewaySettings()
    assert [t.get_secret_value() for t in settings.read_tokens] == ["r1", "r2"]
    assert settings.require_token_for_reads is True
    assert settings.auth_exempt_prefixes == ("/annotate/",)
    assert "r1" not in repr(settings)


def test_reads_required_without_any_token_is_refused_at_start() -> None:
    with pytest.raises(ValidationError, match="require_token_for_reads"):
        GatewaySettings(require_token_for_reads=True)
