"""Stand-ins for the judge providers, speaking each one's published wire format.

Each :class:`StandIn` serves one provider's route (OpenAI ``/v1/chat/completions``, Anthropic
``/v1/messages``, Gemini ``/v1beta/models/{model}:generateContent``), checks its auth headers,
and answers from a script: a queue of canned :class:`Reply` objects, then a policy function
(say "always rank position A most harmful"). Replies cover success, truncation, refusals,
safety blocks and errors (429 with ``retry-after``, 500, Anthropic's 529 ``overloaded_error``)
in each provider's error body. An optional sliding-window request limit answers 429 like the
real services and counts how often it had to. The production clients run against these over
real HTTP, unchanged.

A stand-in is no more lenient than its API: every request is checked against the official
SDK's request type (``tests.provider_types``) and refused with the API's own 400 when it breaks
it (Anthropic: ``temperature: Extra inputs are not permitted``), and every success body it
sends is checked against the SDK's response model before it goes out.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from tests.provider_types import reply_problems, request_problems

ProviderName = Literal["openai", "anthropic", "gemini", "openai_compatible"]
StopKind = Literal["complete", "truncated", "refused", "blocked", "prompt_blocked"]
ROUTES: dict[ProviderName, str] = {
    "openai": "/v1/chat/completions",
    "openai_compatible": "/v1/chat/completions",
    "anthropic": "/v1/messages",
    "gemini": "/v1beta/models/{model}:generateContent",
}
ANTHROPIC_TOOL = "submit_harm_ranking"
_SHOWN = re.compile(r"^Response ([A-Z]):\n<<<\n(.*?)\n>>>", re.DOTALL | re.MULTILINE)


@dataclass
class Reply:
    """One scripted answer: ranks by label (None = N/A) or raw text, or an error status."""

    ranks: Mapping[str, int | None] | None = None
    text: str | None = None
    stop: StopKind = "complete"
    status: int = 200
    retry_after: str | None = None
    message: str = ""  # an error's own message (the default names the status)


@dataclass
class Seen:
    """What the stand-in understood of one request."""

    labels: list[str]
    texts: dict[str, str]  # label -> the response text shown under it
    json_mode: bool
    messages: int
    body: dict[str, Any]
    headers: dict[str, str]


Policy = Callable[[Seen], Reply]


def prefer_position(position: int = 0) -> Policy:
    """A position-biased judge: the response shown at ``position`` is always most harmful."""

    def policy(seen: Seen) -> Reply:
        n = len(seen.labels)
        order = [seen.labels[position]] + [lb for lb in seen.labels if lb != seen.labels[position]]
        return Reply(ranks={label: n - i for i, label in enumerate(order)})

    return policy


def rank_by_text(ranks: Mapping[str, int | None]) -> Policy:
    """A consistent judge: ranks each response by its text, wherever it is shown."""

    def policy(seen: Seen) -> Reply:
        return Reply(ranks={label: ranks[text] for label, text in seen.texts.items()})

    return policy


def answer_text(seen: Seen, ranks: Mapping[str, int | None]) -> str:
    values = {label: "N/A" if not r else str(r) for label, r in ranks.items()}
    if seen.json_mode:
        return json.dumps(values)
    return "\n".join(f"Response {label}: {v}" for label, v in values.items())


@dataclass
class StandIn:
    provider: ProviderName
    api_key: str
    policy: Policy = field(default_factory=prefer_position)
    latency: float = 0.0
    requests_per_minute: int | None = None
    window_seconds: float = 60.0
    queue: deque[Reply] = field(default_factory=deque)
    seen: list[Seen] = field(default_factory=list)
    throttled: int = 0
    arrivals: deque[float] = field(default_factory=deque)
    received: list[float] = field(default_factory=list)  # monotonic time of each accepted call
    rejected: list[list[str]] = field(default_factory=list)  # problems of refused requests

    def script(self, *replies: Reply) -> StandIn:
        self.queue.extend(replies)
        return self

    def app(self) -> Starlette:
        route = Route(ROUTES[self.provider], self._handle, methods=["POST"])
        return Starlette(routes=[route])

    async def _handle(self, request: Request) -> JSONResponse:
        denied = self._auth_error(request)
        if denied is not None:
            return denied
        limited = self._rate_limited()
        if limited is not None:
            return limited
        self.received.append(time.monotonic())
        body = await request.json()
        refused = self._invalid_request(body)
        if refused is not None:
            return refused
        seen = self._understand(body, dict(request.headers))
        self.seen.append(seen)
        if self.latency:
            await asyncio.sleep(self.latency)
        reply = self.queue.popleft() if self.queue else self.policy(seen)
        if reply.status != 200:
            return self._error(reply.status, reply.retry_after, reply.message)
        payload = self._success(seen, reply, body)
        problems = reply_problems(self.provider, payload)
        assert not problems, f"the stand-in's reply breaks the SDK's model: {problems}"
        return JSONResponse(payload)

    def _invalid_request(self, body: dict[str, Any]) -> JSONResponse | None:
        problems = request_problems(self.provider, body)
        if not problems:
            return None
        self.rejected.append(problems)
        if self.provider == "anthropic":
            # The API's wording: "<field>: Extra inputs are not permitted".
            first = problems[0].removeprefix("body.")
            field_name, _, why = first.partition(": ")
            unknown = why.startswith("not a field")
            message = f"{field_name}: Extra inputs are not permitted" if unknown else first
            return self._error(400, None, message)
        return self._error(400, None, "; ".join(problems))

    # --- auth and limits ---------------------------------------------------------------------

    def _auth_error(self, request: Request) -> JSONResponse | None:
        headers = request.headers
        if self.provider == "anthropic":
            if headers.get("anthropic-version") != "2023-06-01":
                return self._error(400, None, "anthropic-version header is required")
            given = headers.get("x-api-key")
        elif self.provider == "gemini":
            given = headers.get("x-goog-api-key")
        else:
            given = headers.get("authorization", "").removeprefix("Bearer ")
        if given == self.api_key:
            return None
        # Real providers echo (part of) a wrong key back; echo all of it to test redaction.
        # Gemini answers a bad key with 400 INVALID_ARGUMENT, the others with 401.
        status = 400 if self.provider == "gemini" else 401
        return self._error(status, None, f"Incorrect API key provided: {given}")

    def _rate_limited(self) -> JSONResponse | None:
        if self.requests_per_minute is None:
            return None
        now = time.monotonic()
        while self.arrivals and self.arrivals[0] <= now - self.window_seconds:
            self.arrivals.popleft()
        if len(self.arrivals) < self.requests_per_minute:
            self.arrivals.append(now)
            return None
        self.throttled += 1
        wait = self.arrivals[0] + self.window_seconds - now
        return self._error(429, str(max(1, math.ceil(wait))))

    # --- requests ----------------------------------------------------------------------------

    def _understand(self, body: dict[str, Any], headers: dict[str, str]) -> Seen:
        if self.provider == "gemini":
            first = body["contents"][0]["parts"][0]["text"]
            json_mode = "responseSchema" in body.get("generationConfig", {})
            count = len(body["contents"])
        else:
            first = body["messages"][0]["content"]
            json_mode = "response_format" in body or "tool_choice" in body
            count = len(body["messages"])
        texts = dict(_SHOWN.findall(first))
        return Seen(list(texts), texts, json_mode, count, body, headers)

    # --- answers -----------------------------------------------------------------------------

    def _success(self, seen: Seen, reply: Reply, body: dict[str, Any]) -> dict[str, Any]:
        text = reply.text if reply.text is not None else answer_text(seen, reply.ranks or {})
        prompt_tokens = len(json.dumps(body)) // 4
        output_tokens = len(text) // 4 + 1
        render = {
            "openai": _openai_success,
            "openai_compatible": _openai_success,
            "anthropic": _anthropic_success,
            "gemini": _gemini_success,
        }[self.provider]
        return render(seen, reply, text, body, (prompt_tokens, output_tokens))

    def _error(self, status: int, retry_after: str | None, message: str = "") -> JSONResponse:
        if self.provider == "gemini":
            # Gemini sends no Retry-After: the wait is a RetryInfo in the body.
            body = _gemini_error(status, message, retry_after)
            return JSONResponse(body, status_code=status)
        headers = {"retry-after": retry_after} if retry_after is not None else None
        render = _anthropic_error if self.provider == "anthropic" else _openai_error
        return JSONResponse(render(status, message), status_code=status, headers=headers)


Tokens = tuple[int, int]


def _openai_success(
    seen: Seen, reply: Reply, text: str, body: dict[str, Any], tokens: Tokens
) -> dict[str, Any]:
    refused = reply.stop == "refused"
    finish = {"truncated": "length", "blocked": "content_filter"}.get(reply.stop, "stop")
    message = {
        "role": "assistant",
        "content": None if refused else text,
        "refusal": "I can't help with ranking this content." if refused else None,
    }
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body["model"],
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": {
            "prompt_tokens": tokens[0],
            "completion_tokens": tokens[1],
            "total_tokens": sum(tokens),
        },
    }


def _anthropic_success(
    seen: Seen, reply: Reply, text: str, body: dict[str, Any], tokens: Tokens
) -> dict[str, Any]:
    stop = {"truncated": "max_tokens", "refused": "refusal"}.get(reply.stop, "end_turn")
    block: dict[str, Any] = {"type": "text", "text": text}
    if seen.json_mode and reply.stop == "complete" and reply.text is None:
        stop = "tool_use"
        values = json.loads(text)
        block = {"type": "tool_use", "id": "toolu_01", "name": ANTHROPIC_TOOL, "input": values}
    return {
        "id": f"msg_{uuid.uuid4().hex[:24]}",
        "type": "message",
        "role": "assistant",
        "model": body["model"],
        "content": [] if reply.stop == "refused" else [block],
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {"input_tokens": tokens[0], "output_tokens": tokens[1]},
    }


_SAFETY_RATINGS = [
    {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True}
]


def _gemini_success(
    seen: Seen, reply: Reply, text: str, body: dict[str, Any], tokens: Tokens
) -> dict[str, Any]:
    usage = {
        "promptTokenCount": tokens[0],
        "candidatesTokenCount": tokens[1],
        "totalTokenCount": sum(tokens),
    }
    if reply.stop == "prompt_blocked":
        usage = {"promptTokenCount": tokens[0], "totalTokenCount": tokens[0]}
        feedback = {"blockReason": "SAFETY", "safetyRatings": _SAFETY_RATINGS}
        return {"promptFeedback": feedback, "usageMetadata": usage}
    candidate: dict[str, Any] = {"index": 0, "finishReason": "STOP"}
    if reply.stop in ("blocked", "refused"):
        candidate |= {"finishReason": "SAFETY", "safetyRatings": _SAFETY_RATINGS}
    else:
        candidate["content"] = {"parts": [{"text": text}], "role": "model"}
        if reply.stop == "truncated":
            candidate["finishReason"] = "MAX_TOKENS"
    return {"candidates": [candidate], "usageMetadata": usage, "modelVersion": "stand-in"}


_OPENAI_TYPES = {401: "invalid_request_error", 429: "requests", 400: "invalid_request_error"}
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
_GEMINI_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


def _openai_error(status: int, message: str) -> dict[str, Any]:
    code = {401: "invalid_api_key", 429: "rate_limit_exceeded"}.get(status)
    return {
        "error": {
            "message": message or f"stand-in error {status}",
            "type": _OPENAI_TYPES.get(status, "server_error"),
            "param": None,
            "code": code,
        }
    }


def _anthropic_error(status: int, message: str) -> dict[str, Any]:
    kind = _ANTHROPIC_TYPES.get(status, "api_error")
    text = message or ("Overloaded" if status == 529 else f"stand-in error {status}")
    return {
        "type": "error",
        "error": {"type": kind, "message": text},
        "request_id": f"req_{uuid.uuid4().hex[:20]}",
    }


def _gemini_error(status: int, message: str, retry_after: str | None) -> dict[str, Any]:
    text = message or f"stand-in error {status}"
    error: dict[str, Any] = {
        "code": status,
        "message": text,
        "status": _GEMINI_STATUS.get(status, ""),
    }
    if retry_after is not None:
        retry_info = {"@type": "type.googleapis.com/google.rpc.RetryInfo"}
        error["details"] = [retry_info | {"retryDelay": f"{float(retry_after):g}s"}]
    return {"error": error}
