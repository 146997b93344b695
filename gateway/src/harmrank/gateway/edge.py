"""One rule at the edge for every text that may reach the database.

PostgreSQL ``text`` cannot hold NUL, and UTF-8 cannot encode an unpaired surrogate: a query
with either fails deep inside a route as a 500 (or, in a streamed export, after the 200). So
every request is checked before any route runs: its path, every query parameter, and every
string (keys included) of a JSON body. The answer is a 422 naming where the text was
(``query.model``, ``body.models.0.name``, ``path``). Multipart form fields are checked where the
form is read (``datasets/form.py``) and uploaded files by their parsers, with the same
``storable`` rule.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import Message, Receive, Scope, Send

from harmrank.common.asgi import HttpMiddleware
from harmrank.common.errors import ErrorBody, error_response

# A JSON escape that decodes to NUL or to half of a surrogate pair: only then is a body parsed
# here (a cheap scan of the bytes otherwise). An escaped backslash before it is a false alarm
# the parse clears.
_SUSPECT_JSON = re.compile(rb"\\u(0000|[dD][89a-fA-F][0-9a-fA-F]{2})|\x00")


def storable(value: str) -> str:
    """Text the database can hold: no NUL (PostgreSQL text), no unpaired surrogate (UTF-8)."""
    problem = text_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def text_problem(value: str) -> str | None:
    if "\x00" in value:
        return f"contains a NUL character at position {value.index(chr(0))}"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "contains an unpaired surrogate"
    return None


def _json_texts(value: Any, where: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], str]]:
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _json_texts(item, (*where, str(index)))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield (*where, key), key
            yield from _json_texts(item, (*where, key))


def json_problem(body: bytes) -> tuple[str, str] | None:
    """(where, what) of the first text in a JSON body the database cannot hold."""
    if not _SUSPECT_JSON.search(body):
        return None
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        return None  # not JSON: the route's own validation says so
    for where, text in _json_texts(parsed, ("body",)):
        problem = text_problem(text)
        if problem is not None:
            return ".".join(where), problem
    return None


def query_problem(scope: Scope) -> tuple[str, str] | None:
    if (problem := text_problem(scope["path"])) is not None:
        return "path", problem
    query = scope.get("query_string", b"").decode("latin-1")
    for key, value in parse_qsl(query, keep_blank_values=True):
        for text in (key, value):
            if (problem := text_problem(text)) is not None:
                return f"query.{key}", problem
    return None


class StorableTextMiddleware(HttpMiddleware):
    """Refuses a request carrying text the database cannot store (see the module)."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = query_problem(scope)
        if found is None and _is_json(scope):
            body, receive = await _buffered(receive)
            found = json_problem(body)
        if found is None:
            await self.app(scope, receive, send)
            return
        where, problem = found
        body_ = ErrorBody(
            error=f"{where}: {problem}",
            error_type="validation",
            details=[{"loc": where.split("."), "msg": problem, "type": "storable_text"}],
        )
        await error_response(422, body_)(scope, receive, send)


def _is_json(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            return b"json" in value.lower()
    return False


async def _buffered(receive: Receive) -> tuple[bytes, Receive]:
    """The whole body (the body limit runs before this), and a receive that replays it."""
    chunks: list[bytes] = []
    messages: list[Message] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break

    async def replay() -> Message:
        return messages.pop(0) if messages else await receive()

    return b"".join(chunks), replay
