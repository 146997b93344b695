"""The HTTP backend: TGI's ``/generate`` and ``/v1/chat/completions`` (also vLLM and SGLang).

Client decision: plain ``httpx`` through :func:`harmrank.common.http.create_client`, not
``huggingface_hub.AsyncInferenceClient``. The maintained client would track TGI's API for us,
but it takes no transport or ``httpx`` client, so it cannot use the shared retry policy (429/503
with capped backoff and ``Retry-After``, timeouts, connect errors, retries counted by reason in
our telemetry) or the ``X-Request-Id`` propagation; it turns TGI's ``{"error", "error_type"}``
bodies into its own exception classes (losing the status we map on), does not expose TGI's
``x-prompt-tokens`` header, and has no retry of its own. The wire format we need is two small
JSON bodies, pinned by TGI's published OpenAPI document and by the stand-in the tests run
against, so owning it costs less than working around the client.

Each model gets two clients: one for generation (the model's timeouts, the retry policy, a pool
sized to its concurrency) and one for probes (``/info``, ``/health``: short timeout, a single
attempt), so listing models with a server down answers in seconds, not after a full backoff.
"""

from __future__ import annotations

import time
from typing import Any

import anyio
import httpx

from harmrank.common.contracts.generation import FinishReason, GenerationParams, ServerInfo
from harmrank.common.errors import HarmrankError
from harmrank.common.http import (
    BUDGET_EXTENSION,
    CallBudget,
    OnRetry,
    RetryPolicy,
    call,
    create_client,
    pooled_transport,
    raise_for_upstream,
    upstream_error_for,
)
from harmrank.generator.backends import Generation
from harmrank.generator.errors import STATUS_ERRORS
from harmrank.generator.settings import ModelConfig, RetrySettings

PROBE_TIMEOUT_SECONDS = 3.0
_TGI_REASONS: frozenset[str] = frozenset({"length", "eos_token", "stop_sequence"})
_CHAT_REASONS: dict[str, FinishReason] = {
    "length": "length",
    "stop": "stop",
    # Older TGI versions passed their own reasons through the chat API.
    "eos_token": "stop",
    "stop_sequence": "stop",
}


def generate_body(inputs: str, params: GenerationParams) -> dict[str, Any]:
    """TGI's GenerateRequest. Temperature 0 is greedy: TGI refuses 0, so sampling is turned off."""
    greedy = params.temperature == 0
    parameters: dict[str, Any] = {
        "max_new_tokens": params.max_new_tokens,
        "do_sample": not greedy and (params.temperature is not None or params.top_p is not None),
        "temperature": None if greedy else params.temperature,
        "top_p": None if greedy else params.top_p,
        "seed": params.seed,
        "repetition_penalty": params.repetition_penalty,
        "stop": params.stop or [],
        "details": True,
        "return_full_text": False,
    }
    return {"inputs": inputs, "parameters": {k: v for k, v in parameters.items() if v is not None}}


def chat_body(config: ModelConfig, prompt: str, params: GenerationParams) -> dict[str, Any]:
    messages = [{"role": "user", "content": prompt}]
    if config.system_prompt:
        messages.insert(0, {"role": "system", "content": config.system_prompt})
    body: dict[str, Any] = {
        # TGI ignores `model`; vLLM and SGLang check it against the model they serve.
        "model": config.served_model or "tgi",
        "messages": messages,
        "max_tokens": params.max_new_tokens,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "seed": params.seed,
        "stop": params.stop,
        "stream": False,
    }
    return {k: v for k, v in body.items() if v is not None}


def _int_header(response: httpx.Response, name: str) -> int | None:
    value = response.headers.get(name)
    return int(value) if value is not None and value.isdigit() else None


def parse_generate(response: httpx.Response) -> Generation:
    payload = response.json()
    details = payload.get("details") or {}
    reason = details.get("finish_reason")
    prefill = details.get("prefill") or []
    # TGI reports the prompt's length in a header; the prefill list only when asked for it.
    prompt_tokens = _int_header(response, "x-prompt-tokens") or (len(prefill) or None)
    return Generation(
        text=payload["generated_text"],
        finish_reason=reason if reason in _TGI_REASONS else "unknown",
        generated_tokens=details.get("generated_tokens"),
        prompt_tokens=prompt_tokens,
        seed=details.get("seed"),
    )


def parse_chat(response: httpx.Response, params: GenerationParams) -> Generation:
    payload = response.json()
    choice = payload["choices"][0]
    usage = payload.get("usage") or {}
    return Generation(
        text=choice["message"].get("content") or "",
        finish_reason=_CHAT_REASONS.get(choice.get("finish_reason") or "", "unknown"),
        generated_tokens=usage.get("completion_tokens"),
        prompt_tokens=usage.get("prompt_tokens"),
        # The chat API does not echo the seed; the one we sent is the one used.
        seed=params.seed,
        served_model=payload.get("model"),
    )


def server_info_from_tgi(payload: dict[str, Any]) -> ServerInfo:
    return ServerInfo(
        model_id=payload.get("model_id"),
        model_revision=payload.get("model_sha"),
        version=payload.get("version"),
        max_input_tokens=payload.get("max_input_tokens"),
        max_total_tokens=payload.get("max_total_tokens"),
        max_concurrent_requests=payload.get("max_concurrent_requests"),
    )


class HttpBackend:
    """One model server: TGI in either mode, or an OpenAI-compatible server in chat mode."""

    def __init__(
        self, config: ModelConfig, retry: RetrySettings, *, on_retry: OnRetry, info_ttl: float
    ) -> None:
        assert config.base_url is not None  # guaranteed by ModelConfig's validation
        self.config = config
        self.upstream = config.name
        self._info_ttl = info_ttl
        self._info: tuple[float, ServerInfo] | None = None
        self._info_lock = anyio.Lock()
        policy = RetryPolicy(
            max_attempts=retry.max_attempts,
            base_delay=retry.base_delay_seconds,
            max_delay=retry.max_delay_seconds,
        )
        timeout = httpx.Timeout(config.timeout_seconds, connect=config.connect_timeout_seconds)
        # A pool as large as the concurrency limit: a slot never waits for a connection.
        self._calls = create_client(
            config.base_url,
            timeout=timeout,
            policy=policy,
            on_retry=on_retry,
            transport=pooled_transport(config.concurrency),
        )
        self._probes = create_client(
            config.base_url, timeout=PROBE_TIMEOUT_SECONDS, policy=RetryPolicy(max_attempts=1)
        )

    async def _post(self, path: str, body: dict[str, Any], budget: CallBudget) -> httpx.Response:
        return await call(
            self._calls,
            "POST",
            path,
            upstream=self.upstream,
            statuses=STATUS_ERRORS,
            json=body,
            extensions={BUDGET_EXTENSION: budget},
        )

    async def generate(
        self, prompt: str, params: GenerationParams, budget: CallBudget
    ) -> Generation:
        if self.config.mode == "chat":
            body = chat_body(self.config, prompt, params)
            return parse_chat(await self._post("/v1/chat/completions", body, budget), params)
        body = generate_body(self.config.render(prompt), params)
        return parse_generate(await self._post("/generate", body, budget))

    async def server_info(self) -> ServerInfo | None:
        async with self._info_lock:  # one fetch at a time: a batch must not storm /info
            if self._info is not None and time.monotonic() - self._info[0] < self._info_ttl:
                return self._info[1]
            info = await self._fetch_info()
            if info is not None:
                self._info = (time.monotonic(), info)
            return info

    async def _fetch_info(self) -> ServerInfo | None:
        try:
            if self.config.backend == "openai":
                return self._served(await self._openai_models())
            response = await self._probes.get("/info")
            if response.status_code == 404:
                # vLLM and SGLang have no /info; the OpenAI model list names what they serve.
                return self._served(await self._openai_models())
            if response.status_code != 200:
                return None
            return server_info_from_tgi(response.json())
        except (HarmrankError, httpx.HTTPError, ValueError, KeyError, AttributeError, TypeError):
            return None  # the info is optional; health() says what is wrong

    async def _openai_models(self) -> list[str]:
        """The ids of ``GET /v1/models`` (OpenAI's list: ``{"object": "list", "data": [...]}``)."""
        response = await self._probes.get("/v1/models")
        raise_for_upstream(response, self.upstream, STATUS_ERRORS)
        return [str(entry["id"]) for entry in response.json().get("data") or []]

    def _served(self, ids: list[str]) -> ServerInfo | None:
        # One server (Ollama, vLLM) may serve several models: report the one configured.
        wanted = self.config.served_model
        if wanted is not None:
            return ServerInfo(model_id=wanted) if wanted in ids else None
        return ServerInfo(model_id=ids[0]) if ids else None

    async def health(self) -> str | None:
        if self.config.backend == "openai":
            return await self._openai_health()
        try:
            response = await self._probes.get("/health")
        except httpx.RequestError as exc:
            return upstream_error_for(exc, self.upstream).message
        try:
            raise_for_upstream(response, self.upstream, STATUS_ERRORS)
        except HarmrankError as exc:
            return exc.message
        return None

    async def _openai_health(self) -> str | None:
        """OpenAI-compatible servers (Ollama, vLLM, SGLang) share no health route; their model
        list answers when they serve, and says whether the configured model is among them."""
        try:
            ids = await self._openai_models()
        except httpx.RequestError as exc:
            return upstream_error_for(exc, self.upstream).message
        except HarmrankError as exc:
            return exc.message
        except (ValueError, KeyError, TypeError, AttributeError):
            return f"{self.upstream}: GET /v1/models answered no OpenAI model list"
        wanted = self.config.served_model
        if wanted is not None and wanted not in ids:
            offered = ", ".join(ids) or "none"
            return f"{self.upstream}: the server does not serve {wanted!r} (it serves: {offered})"
        return None

    async def aclose(self) -> None:
        await self._calls.aclose()
        await self._probes.aclose()
