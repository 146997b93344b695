"""Refuse request bodies over a size limit with 413, before the route reads them.

The refusal names the size (as declared, or what had arrived of a body streamed without a
length), the limit and the setting of that limit: whoever reads it (an operator looking at a
failed run's score task, often) must not have to find out which service and which setting
refused what.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from harmrank.common.asgi import HttpMiddleware
from harmrank.common.errors import ErrorBody, error_response


class BodyLimitMiddleware(HttpMiddleware):
    """Checks Content-Length up front and counts streamed chunks for chunked uploads."""

    def __init__(self, app: ASGIApp, max_bytes: int, setting: str | None = None) -> None:
        """``setting``: the environment variable that sets ``max_bytes``, named in refusals."""
        super().__init__(app)
        self.max_bytes = max_bytes
        self.setting = setting

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send, f"of {int(declared):,} bytes")
            return
        received = 0
        started = refused = False

        async def counting_receive() -> Message:
            # Past the limit, answer 413 ourselves and tell the app the client left, so it
            # stops reading; whatever it then tries to send is dropped.
            nonlocal received, refused
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes and not refused:
                refused = True
                if not started:
                    so_far = f"streamed without a length ({received:,} bytes so far)"
                    await self._refuse(scope, receive, send, so_far)
            return {"type": "http.disconnect"} if refused else message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if refused:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, counting_receive, tracking_send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, size: str) -> None:
        raise_it = f" (set by {self.setting})" if self.setting else ""
        body = ErrorBody(
            error=f"the request body {size} is larger than this service accepts: its "
            f"limit is {self.max_bytes:,} bytes{raise_it}",
            error_type="payload_too_large",
        )
        await error_response(413, body)(scope, receive, send)
