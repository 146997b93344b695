"""The skeleton every harmrank ASGI middleware shares.

The middlewares are pure ASGI rather than ``BaseHTTPMiddleware``, which runs the endpoint in
another task (context variables set around it are then not reliably seen by the endpoint) and
breaks streaming. Each acts on HTTP requests only; lifespan and websocket scopes pass through.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HttpMiddleware(ABC):
    """Calls :meth:`handle` for each HTTP request; ``self.app`` is the application wrapped."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self.handle(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    @abstractmethod
    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one HTTP request, usually by calling ``self.app`` with wrapped channels."""


def on_response_start(send: Send, edit: Callable[[Message, MutableHeaders], None]) -> Send:
    """A ``send`` that lets ``edit`` see (and change) the answer's status line and headers
    before they leave."""

    async def send_edited(message: Message) -> None:
        if message["type"] == "http.response.start":
            edit(message, MutableHeaders(scope=message))
        await send(message)

    return send_edited
