"""How a final failed call becomes one of the common upstream errors (502/503/504 with the
upstream's reason), so no route ever answers a bare 500 for it: the error mapping of
:func:`harmrank.common.http.call`, for callers that send their requests otherwise too.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from typing import Any

import httpx

from harmrank.common.errors import (
    HarmrankError,
    UpstreamError,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from harmrank.common.retry import parse_retry_after

MAX_REASON_CHARS = 200

# Headers and query parameters that carry credentials; an upstream that echoes one back in its
# error body must not get it into our error message (which reaches clients and logs).
_SECRET_HEADERS = (
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "api-key",
    "x-goog-api-key",
    "cookie",
)
_SECRET_PARAMS = ("key", "api_key", "apikey", "access_token", "token")
_MIN_SECRET_CHARS = 4


def _secrets_of(request: httpx.Request | None) -> list[str]:
    if request is None:
        return []
    values = [v for name in _SECRET_HEADERS for v in request.headers.get_list(name)]
    values += [v for name in _SECRET_PARAMS for v in request.url.params.get_list(name)]
    # "Bearer sk-…": the token may come back without its scheme.
    values += [v.partition(" ")[2] for v in values]
    secrets = {v.strip() for v in values if len(v.strip()) >= _MIN_SECRET_CHARS}
    return sorted(secrets, key=len, reverse=True)


def _redact(text: str, request: httpx.Request | None) -> str:
    for secret in _secrets_of(request):
        text = text.replace(secret, "[redacted]")
    return text


def _find_message(payload: object) -> str | None:
    """The human reason in the error bodies we meet (TGI, OpenAI, Anthropic, Gemini, FastAPI)."""
    if isinstance(payload, str):
        return payload or None
    if isinstance(payload, list):
        return _find_message(payload[0]) if payload else None
    if isinstance(payload, dict):
        for key in ("error", "message", "detail", "msg"):
            found = _find_message(payload.get(key))
            if found:
                return found
    return None


def _upstream_reason(response: httpx.Response) -> str:
    try:
        text = response.text
    except httpx.ResponseNotRead:
        return response.reason_phrase
    try:
        found = _find_message(json.loads(text))
    except ValueError:
        found = None
    return (found or text).strip() or response.reason_phrase


def _request_of(response: httpx.Response) -> httpx.Request | None:
    try:
        return response.request
    except RuntimeError:
        return None


StatusErrors = Mapping[int, type[HarmrankError]]
"""Per status, the error a final answer raises, for an upstream whose statuses say more (TGI's
424 "failed while generating"); statuses not listed map as :func:`_error_class` says."""


def _error_class(status_code: int, statuses: StatusErrors) -> type[HarmrankError]:
    if status_code in statuses:
        return statuses[status_code]
    if status_code in (429, 503):
        return UpstreamUnavailable
    if status_code in (408, 504):
        return UpstreamTimeout
    if 400 <= status_code < 500 and status_code != 409:
        # Our request is wrong for the upstream: permanent (asking again pays for the same
        # refusal), and a bad gateway for our caller, never a 4xx of ours.
        return UpstreamRejected
    return UpstreamError


def _retry_after_note(response: httpx.Response) -> str:
    seconds = parse_retry_after(response.headers.get("Retry-After"), now=time.time())
    return "" if seconds is None else f"; retry after {math.ceil(seconds)} s"


def _upstream_type(response: httpx.Response) -> str | None:
    """The upstream's own ``error_type`` (TGI's and ours), when its body states one."""
    try:
        payload = json.loads(response.text)
    except (ValueError, httpx.ResponseNotRead):
        return None
    found = payload.get("error_type") if isinstance(payload, dict) else None
    return found if isinstance(found, str) else None


def raise_for_upstream(
    response: httpx.Response, upstream: str, statuses: StatusErrors | None = None
) -> None:
    """Raise the common error for a final error response (status >= 400); return otherwise.

    The message carries the upstream's own reason, with any credential the request carried
    redacted, and never the request's headers; the details name the upstream, its status and
    its own error type.
    """
    status = response.status_code
    if status < 400:
        return
    request = _request_of(response)
    reason = _redact(_upstream_reason(response), request)[:MAX_REASON_CHARS]
    message = f"{upstream} answered {status}: {reason}" + _retry_after_note(response)
    details: dict[str, Any] = {"upstream": upstream, "status": status}
    if (upstream_type := _upstream_type(response)) is not None:
        details["upstream_error_type"] = upstream_type
    raise _error_class(status, statuses or {})(message, details=[details])


def upstream_error_for(exc: httpx.RequestError, upstream: str) -> HarmrankError:
    """The common error for a request that got no answer. Only the exception's type is named:
    some exception texts hold the URL, and a URL may hold a key (Gemini's ``?key=``)."""
    kind = type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamTimeout(f"{upstream} timed out ({kind})")
    if isinstance(exc, httpx.ConnectError):
        return UpstreamUnavailable(f"{upstream} is unreachable ({kind})")
    return UpstreamError(f"{upstream} failed ({kind})")
