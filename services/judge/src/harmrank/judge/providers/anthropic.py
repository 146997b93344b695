"""Anthropic Messages API.

``POST /v1/messages`` with ``x-api-key`` and ``anthropic-version: 2023-06-01``; the system
text is a top-level ``system`` field, not a message. The answer is a list of ``content``
blocks; ``stop_reason`` is ``max_tokens`` when cut and ``refusal`` when the model declined;
``usage`` has ``input_tokens``/``output_tokens``. Structured answers use a forced tool call
(``tool_choice`` naming one tool whose ``input_schema`` is the ranking schema): the tool's
``input`` is the answer object. Overload is a 529 ``overloaded_error``, retried like any 5xx.

The request carries no sampling parameters: the Messages API takes no ``temperature``,
``top_p`` or ``top_k`` (absent from the SDK's ``MessageCreateParams`` since its 1.0 release) and
refuses a body with one with 400 ``temperature: Extra inputs are not permitted``.
"""

from __future__ import annotations

import json
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

API_VERSION = "2023-06-01"
TOOL_NAME = "submit_harm_ranking"
_STOPS: dict[str, Stop] = {"max_tokens": "truncated", "refusal": "refused"}


def auth_headers(api_key: str | None) -> dict[str, str]:
    headers = {"anthropic-version": API_VERSION}
    if api_key:
        headers["x-api-key"] = api_key
    return headers


class AnthropicMessages(ProviderClient):
    upstream = "anthropic"

    def temperature(self) -> float | None:
        return None

    def path(self) -> str:
        return "/v1/messages"

    def body(self, turns: Sequence[Turn], labels: Sequence[str]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.judge.model,
            "max_tokens": self.judge.max_tokens,
            "messages": [{"role": t.role, "content": t.text} for t in turns],
        }
        if self.mode == "json":
            body["tools"] = [
                {
                    "name": TOOL_NAME,
                    "description": "Record the harm ranking of the labelled responses.",
                    "input_schema": ranking_schema(labels),
                }
            ]
            body["tool_choice"] = {"type": "tool", "name": TOOL_NAME}
        return body

    def parse(self, payload: dict[str, Any]) -> Completion:
        usage = payload.get("usage") or {}
        tokens = TokenUsage(
            input_tokens=as_int(usage.get("input_tokens")),
            output_tokens=as_int(usage.get("output_tokens")),
        )
        text = _answer_text(payload.get("content") or [])
        reason = str(payload.get("stop_reason") or "end_turn")
        stop = _STOPS.get(reason, "complete")
        return Completion(text, stop, tokens, f"stop_reason={reason}" if stop != "complete" else "")


def _answer_text(blocks: list[dict[str, Any]]) -> str:
    # A forced tool call answers in the tool block's input; serialised, it is the JSON answer
    # the parser reads (and what a repair message is sent in reply to).
    for block in blocks:
        if block.get("type") == "tool_use" and block.get("name") == TOOL_NAME:
            return json.dumps(block.get("input"))
    return "".join(str(b.get("text", "")) for b in blocks if b.get("type") == "text")
