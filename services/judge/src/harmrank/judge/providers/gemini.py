"""Google Gemini API (``generateContent``).

``POST /v1beta/models/{model}:generateContent`` with the key in ``x-goog-api-key`` (never in
``?key=``: URLs end up in logs). Messages are ``contents`` of ``parts`` with roles ``user`` and
``model``; ``generationConfig`` carries ``temperature``, ``maxOutputTokens`` and, for
structured answers, ``responseMimeType: application/json`` with a ``responseSchema`` (an
OpenAPI subset: upper-case types, no ``additionalProperties``). A blocked prompt has no
candidates and a ``promptFeedback.blockReason``; a candidate stopped by its safety filters has
``finishReason: SAFETY`` and often no text; ``MAX_TOKENS`` means cut. Usage is in
``usageMetadata`` (``promptTokenCount``, ``candidatesTokenCount``). A 429 says when to come back
in its body, not in a ``Retry-After`` header: ``error.details`` holds a ``google.rpc.RetryInfo``
whose ``retryDelay`` is a protobuf Duration in JSON (``"12s"``, ``"3.957525076s"``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any

from harmrank.common.contracts.judging import TokenUsage
from harmrank.judge.providers.base import (
    Completion,
    ProviderClient,
    Stop,
    Turn,
    as_int,
    ranking_schema,
)

_STOPS: dict[str, Stop] = {
    "MAX_TOKENS": "truncated",
    "SAFETY": "blocked",
    "PROHIBITED_CONTENT": "blocked",
    "BLOCKLIST": "blocked",
    "SPII": "blocked",
    "RECITATION": "blocked",
}


_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
_DURATION = re.compile(r"([0-9]+(?:\.[0-9]{1,9})?)s", re.ASCII)


def retry_delay(body: bytes) -> float | None:
    """Seconds the error body's ``RetryInfo`` asks us to wait; None when it states none."""
    try:
        error = json.loads(body).get("error") or {}
        details = error.get("details") or []
    except (ValueError, AttributeError):
        return None  # not the error JSON of the API (a proxy's HTML page, say)
    for detail in details if isinstance(details, list) else []:
        if isinstance(detail, dict) and detail.get("@type") == _RETRY_INFO:
            found = _DURATION.fullmatch(str(detail.get("retryDelay", "")))
            if found is not None and math.isfinite(seconds := float(found.group(1))):
                return seconds
    return None


def auth_headers(api_key: str | None) -> dict[str, str]:
    return {"x-goog-api-key": api_key} if api_key else {}


def gemini_schema(labels: Sequence[str]) -> dict[str, Any]:
    schema = ranking_schema(labels)
    return {
        "type": "OBJECT",
        "properties": {
            label: {"type": "STRING", "enum": spec["enum"]}
            for label, spec in schema["properties"].items()
        },
        "required": schema["required"],
        "propertyOrdering": list(labels),
    }


class GeminiGenerate(ProviderClient):
    upstream = "gemini"

    def path(self) -> str:
        return f"/v1beta/models/{self.judge.model}:generateContent"

    def body(self, turns: Sequence[Turn], labels: Sequence[str]) -> dict[str, Any]:
        config: dict[str, Any] = {
            "temperature": self.temperature(),
            "maxOutputTokens": self.judge.max_tokens,
        }
        if self.mode == "json":
            config["responseMimeType"] = "application/json"
            config["responseSchema"] = gemini_schema(labels)
        contents = [
            {"role": "model" if t.role == "assistant" else "user", "parts": [{"text": t.text}]}
            for t in turns
        ]
        return {"contents": contents, "generationConfig": config}

    def parse(self, payload: dict[str, Any]) -> Completion:
        usage = payload.get("usageMetadata") or {}
        tokens = TokenUsage(
            input_tokens=as_int(usage.get("promptTokenCount")),
            output_tokens=as_int(usage.get("candidatesTokenCount")),
        )
        candidates = payload.get("candidates") or []
        if not candidates:
            reason = (payload.get("promptFeedback") or {}).get("blockReason", "no candidates")
            return Completion("", "blocked", tokens, f"blockReason={reason}")
        first = candidates[0]
        parts = (first.get("content") or {}).get("parts") or []
        text = "".join(str(p.get("text", "")) for p in parts)
        finish = str(first.get("finishReason") or "STOP")
        stop = _STOPS.get(finish, "complete")
        return Completion(
            text, stop, tokens, f"finishReason={finish}" if stop != "complete" else ""
        )
