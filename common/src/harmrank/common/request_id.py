"""The request id that ties one public request to every downstream call it causes.

``RequestIdMiddleware`` puts the id of the request being served in a context variable; the HTTP
clients from :func:`harmrank.common.http.create_client` copy it into ``X-Request-Id`` on every
outgoing call, so logs of the gateway, judge, generator and metrics can be joined on it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from harmrank.common.asgi import HttpMiddleware, on_response_start

REQUEST_ID_HEADER = "X-Request-Id"
MAX_REQUEST_ID_LENGTH = 128

_request_id: ContextVar[str | None] = ContextVar("harmrank_request_id", default=None)


def current_request_id() -> str | None:
    """The id of the request being served in this context, or None outside of one."""
    return _request_id.get()


def new_request_id() -> str:
    return uuid.uuid4().hex


def is_valid_request_id(value: str) -> bool:
    # The id is copied into logs and other services' headers: bound its size and keep out
    # control characters (log injection) and non-ASCII (header encoding trouble).
    return 0 < len(value) <= MAX_REQUEST_ID_LENGTH and value.isascii() and value.isprintable()


@contextmanager
def request_id_scope(request_id: str | None = None) -> Iterator[str]:
    """Run a block (a background job, a CLI command) under a request id; a new one by default."""
    value = request_id if request_id is not None else new_request_id()
    token = _request_id.set(value)
    try:
        yield value
    finally:
        _request_id.reset(token)


class RequestIdMiddleware(HttpMiddleware):
    """Adopt or make the request id, expose it, echo it in the response (pure ASGI, so the
    endpoint sees the context variable, see :mod:`harmrank.common.asgi`)."""

    def __init__(self, app: ASGIApp, *, header_name: str = REQUEST_ID_HEADER) -> None:
        super().__init__(app)
        self.header_name = header_name

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = self._incoming_id(scope) or new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id

        def echo_id(_: Message, headers: MutableHeaders) -> None:
            headers[self.header_name] = request_id

        send_with_id = on_response_start(send, echo_id)
        with request_id_scope(request_id):
            await self.app(scope, receive, send_with_id)

    def _incoming_id(self, scope: Scope) -> str | None:
        value = Headers(scope=scope).get(self.header_name)
        return value if value is not None and is_valid_request_id(value) else None
