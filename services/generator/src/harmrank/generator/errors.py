"""The generator's errors, and how a model server's error answer maps onto them.

TGI answers errors as ``{"error": str, "error_type": str}``: 422 ``validation`` (input too
long, bad parameters), 424 ``generation`` (failed while generating), 429 ``overloaded``, 503
when unhealthy. OpenAI-compatible servers (vLLM, SGLang) answer 400 with
``{"error": {"message": ...}}`` or ``{"message": ...}`` for the same input problems.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from harmrank.common.errors import (
    HarmrankError,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)

MAX_MESSAGE_CHARS = 500


class GenerationValidation(HarmrankError):
    """The model server refused the input for good: retrying the same call cannot help."""

    status_code = 422
    error_type = "generation_validation"


class GenerationFailed(UpstreamError):
    """The model server failed while generating (TGI's 424), even after bounded retries."""

    error_type = "generation_failed"


class UpstreamOverloaded(UpstreamUnavailable):
    """The model server stayed overloaded (429) through every retry."""

    error_type = "upstream_overloaded"


def _message_in(payload: Any) -> str | None:
    if isinstance(payload, str):
        return payload or None
    if isinstance(payload, dict):
        for key in ("error", "message", "detail"):
            found = _message_in(payload.get(key))
            if found:
                return found
    if isinstance(payload, list) and payload:
        return _message_in(payload[0])
    return None


def _parse(response: httpx.Response) -> tuple[str, str | None]:
    """The server's own message and error_type (TGI's), falling back to the raw text."""
    text = response.text
    try:
        payload = json.loads(text)
    except ValueError:
        return (text.strip() or response.reason_phrase), None
    error_type = payload.get("error_type") if isinstance(payload, dict) else None
    message = _message_in(payload) or text.strip() or response.reason_phrase
    return message, error_type if isinstance(error_type, str) else None


def _error_class(status: int) -> type[HarmrankError]:
    if status in (400, 413, 422):
        return GenerationValidation
    if status == 424:
        return GenerationFailed
    if status == 429:
        return UpstreamOverloaded
    if status in (408, 504):
        return UpstreamTimeout
    if status == 503:
        return UpstreamUnavailable
    return UpstreamError


def error_for_response(response: httpx.Response, upstream: str) -> HarmrankError:
    """The error for a final (retries spent) error answer, carrying the server's message."""
    message, upstream_type = _parse(response)
    status = response.status_code
    details: dict[str, Any] = {"upstream": upstream, "status": status}
    if upstream_type is not None:
        details["upstream_error_type"] = upstream_type
    text = f"{upstream} answered {status}: {message[:MAX_MESSAGE_CHARS]}"
    return _error_class(status)(text, details=[details])
