"""OpenAI Chat Completions, for OpenAI itself and OpenAI-compatible servers (vLLM, TGI, Ollama).

``POST /v1/chat/completions`` with ``Authorization: Bearer``. The answer is
``choices[0].message.content``; ``message.refusal`` is set when the model refuses under
structured outputs; ``finish_reason`` is ``length`` when cut at the token limit and
``content_filter`` when the provider withheld the text; ``usage`` has
``prompt_tokens``/``completion_tokens``. OpenAI takes ``max_completion_tokens`` (``max_tokens``
is deprecated there and refused by reasoning models); compatible servers take ``max_tokens``.
OpenAI's reasoning models (the o-series and GPT-5) refuse ``temperature`` other than the
default, so it is sent only to the other model families.
"""

from __future__ import annotations

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

_STOPS: dict[str, Stop] = {"length": "truncated", "content_filter": "blocked"}
_REASONING_MODEL = re.compile(r"^(o[0-9]|gpt-5)")


def auth_headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


class OpenAIChat(ProviderClient):
    upstream = "openai"

    def path(self) -> str:
        return "/v1/chat/completions"

    def body(self, turns: Sequence[Turn], labels: Sequence[str]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.judge.model,
            "messages": [{"role": t.role, "content": t.text} for t in turns],
            self._max_tokens_field: self.judge.max_tokens,
        }
        if (temperature := self.temperature()) is not None:
            body["temperature"] = temperature
        if self.mode == "json":
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": "harm_ranking",
                    "strict": True,
                    "schema": ranking_schema(labels),
                },
            }
        return body

    def temperature(self) -> float | None:
        return None if _REASONING_MODEL.match(self.judge.model) else self.judge.temperature

    @property
    def _max_tokens_field(self) -> str:
        return "max_completion_tokens"

    def parse(self, payload: dict[str, Any]) -> Completion:
        usage = payload.get("usage") or {}
        tokens = TokenUsage(
            input_tokens=as_int(usage.get("prompt_tokens")),
            output_tokens=as_int(usage.get("completion_tokens")),
        )
        choices = payload.get("choices") or [{}]
        message = choices[0].get("message") or {}
        refusal = message.get("refusal")
        if refusal:
            return Completion(str(message.get("content") or ""), "refused", tokens, str(refusal))
        finish = str(choices[0].get("finish_reason") or "stop")
        stop = _STOPS.get(finish, "complete")
        detail = f"finish_reason={finish}" if stop != "complete" else ""
        return Completion(str(message.get("content") or ""), stop, tokens, detail)


class OpenAICompatibleChat(OpenAIChat):
    upstream = "openai_compatible"

    def temperature(self) -> float | None:
        return self.judge.temperature  # open models keep their names; no family rule applies

    @property
    def _max_tokens_field(self) -> str:
        return "max_tokens"
