"""Every error answer the gateway's OpenAPI document lists says when it happens, in the
route's own words rather than the HTTP reason phrase FastAPI puts when a route gives none."""

from __future__ import annotations

from http import HTTPStatus

from harmrank.gateway.app import create_app
from harmrank.gateway.settings import GatewaySettings


def test_every_error_answer_is_described() -> None:
    paths = create_app(GatewaySettings()).openapi()["paths"]
    bare = [
        (method.upper(), path, code, answer.get("description"))
        for path, operations in paths.items()
        for method, operation in operations.items()
        for code, answer in operation["responses"].items()
        if code.isdigit()
        and int(code) >= 400
        and answer.get("description") in (None, "", HTTPStatus(int(code)).phrase)
    ]
    assert not bare, bare
    runs = paths["/v1/runs"]["post"]["responses"]
    assert {code: runs[code]["description"][:20] for code in ("409", "422", "503")} == {
        "409": "The Idempotency-Key ",
        "422": "An invalid body, or ",
        "503": "A generator or judge",
    }
    assert paths["/v1/runs/{run_id}"]["get"]["responses"]["404"]["description"] == "No such run"
