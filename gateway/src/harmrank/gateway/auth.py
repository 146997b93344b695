"""Bearer tokens: with tokens configured, writes need a write token; reads may need any token.

- ``api_tokens`` may read and write; ``read_tokens`` may only read (a write with one is a 403).
- Writes (POST/PUT/PATCH/DELETE) need a write token as soon as any token is configured.
- Reads (every other method) are open unless ``require_token_for_reads`` is set; then they need
  a read or a write token.
- Always open: the probes, ``/metrics`` (scrapers carry no token), the OpenAPI document and the
  explorer's page files (its API follows the read rules).
- Skipped: paths under ``exempt_prefixes`` (default ``/annotate/``), routes with their own
  authentication (the annotation page signs annotators in with a session of its own). A prefix
  matches whole path segments: ``/annotate`` covers ``/annotate`` and ``/annotate/…`` but not
  ``/annotatex`` or ``/annotate-admin``.

The given token is compared with ``hmac.compare_digest`` against every configured token, write
and read ones alike, with no early exit: the time taken says nothing about which token, if any,
was nearly right.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from pydantic import SecretStr
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from harmrank.common.errors import ErrorBody, error_response
from harmrank.gateway.settings import DEFAULT_EXEMPT_PREFIXES, GatewaySettings

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
OPEN_PATHS = frozenset(
    {"/healthz", "/readyz", "/metrics", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"}
)
# The explorer's page files hold no data (its API does, under the read rules): a browser
# must be able to load them to be asked for a read token.
OPEN_PREFIXES = ("/explore",)
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="harmrank"'}
WRITE_REQUIRED = "a valid bearer token is required to write"
READ_REQUIRED = "a valid bearer token is required to read"
READ_ONLY = "this token may only read"


def token_matches(given: str, tokens: Sequence[SecretStr]) -> bool:
    candidate = given.encode()
    # No short-circuit: every token is compared whatever the outcome of the others.
    results = [hmac.compare_digest(candidate, t.get_secret_value().encode()) for t in tokens]
    return any(results)


def exempt_path(path: str, prefixes: Sequence[str]) -> bool:
    """Whether ``path`` is one of ``prefixes`` or lies under one, segment by segment."""
    for prefix in prefixes:
        base = prefix.rstrip("/")
        if base and (path == base or path.startswith(base + "/")):
            return True
    return False


def bearer_token(scope: Scope) -> str | None:
    header = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


class TokenMiddleware:
    """Checks bearer tokens before the routes (see the module's docstring for the rules)."""

    def __init__(
        self,
        app: ASGIApp,
        tokens: Sequence[SecretStr] = (),
        read_tokens: Sequence[SecretStr] = (),
        require_token_for_reads: bool = False,
        exempt_prefixes: Sequence[str] = DEFAULT_EXEMPT_PREFIXES,
    ) -> None:
        self.app = app
        self.tokens = list(tokens)
        self.read_tokens = list(read_tokens)
        self.require_token_for_reads = require_token_for_reads
        self.exempt_prefixes = tuple(exempt_prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        refusal = self._refusal(scope) if scope["type"] == "http" else None
        if refusal is None:
            await self.app(scope, receive, send)
            return
        status, message, error_type = refusal
        headers = CHALLENGE if status == 401 else None
        body = ErrorBody(error=message, error_type=error_type)
        await error_response(status, body, headers)(scope, receive, send)

    def _refusal(self, scope: Scope) -> tuple[int, str, str] | None:
        """None to let the request through, else (status, message, error type)."""
        path: str = scope["path"]
        if path in OPEN_PATHS or exempt_path(path, (*self.exempt_prefixes, *OPEN_PREFIXES)):
            return None
        writing = scope["method"] in WRITE_METHODS
        if not writing and not self.require_token_for_reads:
            return None
        if writing and not (self.tokens or self.read_tokens):
            return None  # no token configured: a laptop, writes open
        kind = self._kind(bearer_token(scope))
        if kind == "write" or (kind == "read" and not writing):
            return None
        if kind == "read":
            return 403, READ_ONLY, "forbidden"
        return 401, WRITE_REQUIRED if writing else READ_REQUIRED, "unauthorized"

    def _kind(self, token: str | None) -> str | None:
        if token is None:
            return None
        # Both lists compared in full, whatever the first one answers.
        write = token_matches(token, self.tokens)
        read = token_matches(token, self.read_tokens)
        return "write" if write else "read" if read else None


def token_middleware(settings: GatewaySettings) -> Middleware:
    """The middleware entry for ``create_service_app``, from the gateway's settings."""
    return Middleware(
        TokenMiddleware,
        tokens=settings.api_tokens,
        read_tokens=settings.read_tokens,
        require_token_for_reads=settings.require_token_for_reads,
        exempt_prefixes=settings.auth_exempt_prefixes,
    )
