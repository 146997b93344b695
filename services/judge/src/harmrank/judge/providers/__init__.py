"""One module per provider; :func:`build_provider` picks the class and its auth headers."""

from __future__ import annotations

from collections.abc import Callable

from harmrank.common.contracts.judging import Provider
from harmrank.judge.providers import anthropic, gemini, openai
from harmrank.judge.providers.base import Completion, ProviderClient, Turn

PROVIDERS: dict[Provider, type[ProviderClient]] = {
    "openai": openai.OpenAIChat,
    "openai_compatible": openai.OpenAICompatibleChat,
    "anthropic": anthropic.AnthropicMessages,
    "gemini": gemini.GeminiGenerate,
}
# Providers that state a 429's wait in the error body rather than in Retry-After.
RETRY_DELAY_IN_BODY: dict[Provider, Callable[[bytes], float | None]] = {
    "gemini": gemini.retry_delay,
}

AUTH_HEADERS: dict[Provider, Callable[[str | None], dict[str, str]]] = {
    "openai": openai.auth_headers,
    "openai_compatible": openai.auth_headers,
    "anthropic": anthropic.auth_headers,
    "gemini": gemini.auth_headers,
}

__all__ = [
    "AUTH_HEADERS",
    "PROVIDERS",
    "RETRY_DELAY_IN_BODY",
    "Completion",
    "ProviderClient",
    "Turn",
]
