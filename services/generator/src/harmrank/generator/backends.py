"""What the service needs from a backend, and which backend serves a configured model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from harmrank.common.contracts.generation import FinishReason, GenerationParams, ServerInfo
from harmrank.common.http import CallBudget, OnRetry
from harmrank.generator.settings import ModelConfig, RetrySettings


@dataclass(frozen=True)
class Generation:
    """What a backend got for one prompt; the service adds timing and the model's identity."""

    text: str
    finish_reason: FinishReason
    generated_tokens: int | None
    prompt_tokens: int | None
    seed: int | None
    # A chat server names the model it served in every answer; TGI's /generate does not.
    served_model: str | None = None


class Backend(Protocol):
    config: ModelConfig

    async def generate(
        self, prompt: str, params: GenerationParams, budget: CallBudget
    ) -> Generation:
        """Answer one prompt, raising a HarmrankError subclass on failure; each call to a
        model server takes one from ``budget``."""
        ...

    async def server_info(self) -> ServerInfo | None:
        """What the server says about itself, cached; None when it cannot be had now."""
        ...

    async def health(self) -> str | None:
        """None when healthy, else a short reason."""
        ...

    async def aclose(self) -> None: ...


def supported_params(config: ModelConfig, params: GenerationParams) -> GenerationParams:
    """The parameters that will really be applied, so the recorded ones are the true ones."""
    if config.mode == "chat":
        # The chat API has no repetition penalty (TGI's ChatRequest ignores it).
        return params.model_copy(update={"repetition_penalty": None})
    return params


def build_backend(
    config: ModelConfig, retry: RetrySettings, *, on_retry: OnRetry, info_ttl: float
) -> Backend:
    if config.backend == "transformers":
        from harmrank.generator.local import TransformersBackend

        return TransformersBackend(config)
    from harmrank.generator.tgi import HttpBackend

    return HttpBackend(config, retry, on_retry=on_retry, info_ttl=info_ttl)
