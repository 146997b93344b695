"""Write access: with tokens configured, every write needs ``Authorization: Bearer <token>``.

Reads stay open (results are meant to be shared; the judge keys never reach the database).
Tokens are compared with ``hmac.compare_digest`` against every configured token, so the time
taken says nothing about how much of a guess was right.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from pydantic import SecretStr
from starlette.types import ASGIApp, Receive, Scope, Send

from harmrank.common.errors import ErrorBody, error_response

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def token_matches(given: str, tokens: Sequence[SecretStr]) -> bool:
    candidate = given.encode()
    # No short-circuit: every token is compared whatever the outcome of the others.
    results = [hmac.compare_digest(candidate, t.get_secret_value().encode()) for t in tokens]
    return any(results)


def bearer_token(scope: Scope) -> str | None:
    header = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


class WriteTokenMiddleware:
    def __init__(self, app: ASGIApp, tokens: Sequence[SecretStr]) -> None:
        self.app = app
        self.tokens = list(tokens)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.tokens and scope["method"] in WRITE_METHODS:
            token = bearer_token(scope)
            if token is None or not token_matches(token, self.tokens):
                body = ErrorBody(
                    error="a valid bearer token is required to write", error_type="unauthorized"
                )
                headers = {"WWW-Authenticate": 'Bearer realm="harmrank"'}
                await error_response(401, body, headers)(scope, receive, send)
                return
        await self.app(scope, receive, send)
