"""Security headers on every HTML page the gateway sends.

The annotation pages set their own strict policy; every other HTML answer (a run's
``report.html``, a dataset's ``?format=html`` report, any page added later) gets the same
policy here, widened only by what a self-contained report needs: its one inline ``<style>``
block, allowed by hash (not ``'unsafe-inline'``), and its figures as ``data:`` images. No
script may run, nothing loads from elsewhere, and no other site may frame the page.
"""

from __future__ import annotations

import base64
import hashlib
import re
from importlib import resources

from starlette.datastructures import MutableHeaders
from starlette.types import Message, Receive, Scope, Send

from harmrank.common.asgi import HttpMiddleware, on_response_start


def _style_hashes() -> str:
    """CSP hash sources of the report template's inline style blocks (static text)."""
    template = resources.files("harmrank.gateway.reports") / "templates" / "report.html.j2"
    blocks = re.findall(r"<style>(.*?)</style>", template.read_text("utf-8"), re.S)
    digests = (hashlib.sha256(block.encode()).digest() for block in blocks)
    return " ".join(f"'sha256-{base64.b64encode(d).decode()}'" for d in digests)


REPORT_CSP = (
    f"default-src 'none'; script-src 'none'; style-src {_style_hashes()}; img-src data:; "
    "form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": REPORT_CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


class PageHeadersMiddleware(HttpMiddleware):
    """Adds ``PAGE_HEADERS`` to HTML answers that carry no policy of their own."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, on_response_start(send, _add_page_headers))


def _add_page_headers(_: Message, headers: MutableHeaders) -> None:
    if headers.get("content-type", "").startswith("text/html"):
        for name, value in PAGE_HEADERS.items():
            headers.setdefault(name, value)
