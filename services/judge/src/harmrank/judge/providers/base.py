"""What every judge provider does: one chat exchange in, one :class:`Completion` out.

Providers are called with httpx through ``harmrank.common.http`` rather than the official SDKs:
one retry policy (``Retry-After`` honoured, 529 and 5xx retried) instead of each SDK's own
retries stacking on ours, one mapping of upstream failures to our 502/503/504 errors with keys
redacted, one place where rate limits are enforced (the client's transport), and three fewer
dependencies. The wire formats are small; each module names the documented fields it uses.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from harmrank.common.contracts.judging import OutputMode, TokenUsage
from harmrank.common.errors import UpstreamError
from harmrank.common.http import BUDGET_EXTENSION, CallBudget, call
from harmrank.judge.limiter import TOKENS_EXTENSION, ProviderLimiter
from harmrank.judge.settings import JudgeConfig
from harmrank.judge.templates import NA_TEXT

Stop = Literal["complete", "truncated", "refused", "blocked"]

CHARS_PER_TOKEN = 4  # a conservative rule of thumb for English; only the rate limiter uses it


@dataclass(frozen=True)
class Turn:
    role: Literal["user", "assistant"]
    text: str


@dataclass(frozen=True)
class Completion:
    """The judge's answer: its text, why it stopped, what it cost, and any refusal reason."""

    text: str
    stop: Stop
    usage: TokenUsage
    detail: str = ""


def ranking_schema(labels: Sequence[str]) -> dict[str, Any]:
    """JSON Schema of the structured answer: every label, each "N/A" or a rank as a string.

    Strings rather than integers keep one value type for N/A and ranks, and the enum bounds
    ranks to 1..n; ties and gaps cannot be expressed in a schema and are checked after.
    """
    values = [NA_TEXT] + [str(i) for i in range(1, len(labels) + 1)]
    return {
        "type": "object",
        "properties": {label: {"type": "string", "enum": values} for label in labels},
        "required": list(labels),
        "additionalProperties": False,
    }


class ProviderClient(ABC):
    """One judge's calls to its provider, over a client built for that judge."""

    upstream: str

    def __init__(
        self,
        judge: JudgeConfig,
        client: httpx.AsyncClient,
        limiter: ProviderLimiter | None = None,
    ) -> None:
        self.judge = judge
        self.client = client
        self.limiter = limiter

    @property
    def mode(self) -> OutputMode:
        return self.judge.resolved_output_mode

    def temperature(self) -> float | None:
        """The sampling temperature sent, or None where the provider or model takes none."""
        return self.judge.temperature

    @abstractmethod
    def path(self) -> str: ...

    @abstractmethod
    def body(self, turns: Sequence[Turn], labels: Sequence[str]) -> dict[str, Any]: ...

    @abstractmethod
    def parse(self, payload: dict[str, Any]) -> Completion: ...

    async def complete(
        self, turns: Sequence[Turn], labels: Sequence[str], budget: CallBudget
    ) -> Completion:
        """Send one exchange, each attempt taking a call from ``budget``; upstream failures
        raise the common upstream errors."""
        estimate = sum(len(t.text) for t in turns) // CHARS_PER_TOKEN + self.judge.max_tokens
        response = await call(
            self.client,
            "POST",
            self.path(),
            upstream=self.upstream,
            json=self.body(turns, labels),
            extensions={TOKENS_EXTENSION: estimate, BUDGET_EXTENSION: budget},
        )
        completion = self.parse(_json_object(response))
        if self.limiter is not None:
            used = completion.usage.input_tokens + completion.usage.output_tokens
            self.limiter.settle(estimate, used)
        return completion


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        payload = response.json()
    except ValueError as exc:
        raise UpstreamError("provider answered 200 with a body that is not JSON") from exc
    if not isinstance(payload, dict):
        raise UpstreamError("provider answered 200 with a body that is not a JSON object")
    return payload


def as_int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
