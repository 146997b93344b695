"""A Text Generation Inference stand-in that speaks TGI's published wire format (OpenAPI 3.3.x).

Routes: ``POST /generate``, ``POST /v1/chat/completions``, ``GET /info``, ``GET /health``,
``GET /metrics``. Bodies follow TGI's schemas (``GenerateResponse`` with ``details``,
``ChatCompletion`` with ``usage``, ``Info``), errors are ``{"error", "error_type"}`` with TGI's
statuses and messages, and TGI's ``x-prompt-tokens`` / ``x-generated-tokens`` headers are set.

What a test controls (on :class:`StandinState`): latency per call, injected failures (a queue:
each generation call consumes one), health, and a max-concurrency limit past which it answers
429 ``overloaded`` as TGI's router does. It records bodies and the most calls it saw in flight.
Every request body is checked against TGI's OpenAPI document (``tgi_schema``) first and
refused with 422, as TGI's JSON extractor refuses a body it cannot read.

Text is deterministic: words drawn from a hash of the inputs and the seed; one "token" per
word, the prompt's tokens are its whitespace-separated words.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from tests.generator.tgi_schema import request_problems

VOCABULARY = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india")

# TGI's own error bodies (router/src/server.rs and the OpenAPI examples).
TGI_ERRORS: dict[int, tuple[str, str]] = {
    422: ("Input validation error", "validation"),
    424: ("Request failed during generation: Server error: CUDA out of memory", "generation"),
    429: ("Model is overloaded", "overloaded"),
    500: ("Incomplete generation", "incomplete_generation"),
    503: ("unhealthy", "healthcheck"),
}


@dataclass
class Failure:
    status: int
    message: str | None = None
    error_type: str | None = None

    def response(self) -> JSONResponse:
        message, error_type = TGI_ERRORS.get(self.status, ("error", "unknown"))
        body = {"error": self.message or message, "error_type": self.error_type or error_type}
        return JSONResponse(body, status_code=self.status)


@dataclass
class StandinState:
    model_id: str = "mistralai/Mistral-7B-Instruct-v0.2"
    model_sha: str = "3ad372fc79158a2148299e3318516c786aeded6c"
    max_input_tokens: int = 1024
    max_total_tokens: int = 2048
    max_concurrent_requests: int = 128
    latency: float = 0.0
    healthy: bool = True
    failures: deque[Failure] = field(default_factory=deque)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    refused: list[list[str]] = field(default_factory=list)  # schema problems of refused bodies
    info_calls: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    request_count: int = 0
    success_count: int = 0
    durations: list[float] = field(default_factory=list)

    def fail(self, status: int, times: int = 1, message: str | None = None) -> None:
        """The next ``times`` generation calls answer ``status`` with TGI's error body."""
        self.failures.extend(Failure(status, message) for _ in range(times))


def words_for(inputs: str, seed: int | None, count: int) -> list[str]:
    digest = hashlib.sha256(f"{inputs}\x00{seed}".encode()).digest()
    return [VOCABULARY[digest[i % len(digest)] % len(VOCABULARY)] for i in range(count)]


def natural_length(inputs: str) -> int:
    """How many tokens the 'model' wants to say before its end-of-sequence token."""
    return 4 + hashlib.sha256(inputs.encode()).digest()[0] % 12


@dataclass
class Output:
    text: str
    tokens: list[str]
    finish_reason: str
    seed: int | None


def generate_text(inputs: str, params: dict[str, Any]) -> Output:
    sampling = bool(params.get("do_sample")) or any(
        params.get(key) is not None for key in ("temperature", "top_p", "top_k")
    )
    # TGI draws a seed when sampling without one, and reports it in details.
    seed = params.get("seed")
    if sampling and seed is None:
        seed = random.randrange(2**31)
    limit = params.get("max_new_tokens") or 1024
    wanted = natural_length(inputs)
    tokens = words_for(inputs, seed if sampling else None, min(limit, wanted))
    finish = "length" if limit <= wanted else "eos_token"
    text = ""
    for index, token in enumerate(tokens):
        text += (" " if index else "") + token
        if any(stop in text for stop in params.get("stop") or []):
            tokens, finish = tokens[: index + 1], "stop_sequence"
            break
    return Output(text, tokens, finish, seed if sampling else None)


def validate(state: StandinState, inputs: str, params: dict[str, Any]) -> JSONResponse | None:
    """TGI's router validation, with its messages (router/src/validation.rs)."""
    given = len(inputs.split())
    new = params.get("max_new_tokens") or 0
    problem = None
    if params.get("temperature") is not None and params["temperature"] <= 0:
        problem = "`temperature` must be strictly positive"
    elif len(params.get("stop") or []) > 4:
        problem = f"`stop` supports up to 4 stop sequences. Given: {len(params['stop'])}"
    elif given > state.max_input_tokens:
        problem = f"`inputs` must have less than {state.max_input_tokens} tokens. Given: {given}"
    elif given + new > state.max_total_tokens:
        problem = (
            f"`inputs` tokens + `max_new_tokens` must be <= {state.max_total_tokens}. "
            f"Given: {given} `inputs` tokens and {new} `max_new_tokens`"
        )
    if problem is None:
        return None
    return Failure(422, f"Input validation error: {problem}").response()


def _token(index: int, text: str) -> dict[str, Any]:
    return {"id": index, "text": text, "logprob": -0.5, "special": False}


def _timing_headers(prompt_tokens: int, generated: int) -> dict[str, str]:
    return {
        "x-compute-type": "gpu+optimized",
        "x-prompt-tokens": str(prompt_tokens),
        "x-generated-tokens": str(generated),
        "x-total-time": "12",
        "x-validation-time": "1",
        "x-queue-time": "1",
        "x-inference-time": "10",
        "x-time-per-token": "1",
    }


class Standin:
    """The app plus its state; serve ``app`` with the ``serve_app`` fixture."""

    def __init__(self, state: StandinState | None = None) -> None:
        self.state = state or StandinState()
        self.app = Starlette(
            routes=[
                Route("/generate", self.generate, methods=["POST"]),
                Route("/v1/chat/completions", self.chat, methods=["POST"]),
                Route("/info", self.info, methods=["GET"]),
                Route("/health", self.health, methods=["GET"]),
                Route("/metrics", self.metrics, methods=["GET"]),
            ]
        )

    async def _admit(self, request: Request) -> tuple[dict[str, Any] | None, Response | None]:
        """Parse, count and gate one call: TGI answers 429 past its concurrency limit."""
        state = self.state
        state.request_count += 1
        try:
            body = json.loads(await request.body())
        except ValueError:
            # axum's Json extractor answers plain text for an unparsable body.
            return None, PlainTextResponse("Failed to parse the request body as JSON", 422)
        state.bodies.append(body)
        problems = request_problems(request.url.path, body)
        if problems:
            state.refused.append(problems)
            text = f"Failed to deserialize the JSON body into the target type: {problems[0]}"
            return None, PlainTextResponse(text, 422)
        if state.in_flight >= state.max_concurrent_requests:
            return None, Failure(429).response()
        if state.failures:
            return None, state.failures.popleft().response()
        return body, None

    async def _run(self, inputs: str, params: dict[str, Any]) -> Output | Response:
        state = self.state
        invalid = validate(state, inputs, params)
        if invalid is not None:
            return invalid
        state.in_flight += 1
        state.max_in_flight = max(state.max_in_flight, state.in_flight)
        try:
            await asyncio.sleep(state.latency)
        finally:
            state.in_flight -= 1
        state.success_count += 1
        state.durations.append(state.latency)
        return generate_text(inputs, params)

    async def generate(self, request: Request) -> Response:
        body, refused = await self._admit(request)
        if refused is not None or body is None:
            return refused or Failure(422).response()
        if not isinstance(body.get("inputs"), str):
            return PlainTextResponse("missing field `inputs`", 422)
        params = body.get("parameters") or {}
        output = await self._run(body["inputs"], params)
        if isinstance(output, Response):
            return output
        return self._generate_response(body["inputs"], params, output)

    def _generate_response(self, inputs: str, params: dict[str, Any], out: Output) -> Response:
        prompt = inputs.split()
        details = {
            "finish_reason": out.finish_reason,
            "generated_tokens": len(out.tokens),
            "seed": out.seed,
            "prefill": [
                {"id": i, "text": w, "logprob": None if i == 0 else -1.0}
                for i, w in enumerate(prompt)
            ]
            if params.get("decoder_input_details")
            else [],
            "tokens": [_token(i, w) for i, w in enumerate(out.tokens)],
        }
        text = (inputs + out.text) if params.get("return_full_text") else out.text
        content: dict[str, Any] = {"generated_text": text}
        if params.get("details", True):
            content["details"] = details
        return JSONResponse(content, headers=_timing_headers(len(prompt), len(out.tokens)))

    async def chat(self, request: Request) -> Response:
        body, refused = await self._admit(request)
        if refused is not None or body is None:
            return refused or Failure(422).response()
        inputs = "\n".join(str(m.get("content", "")) for m in body.get("messages") or [])
        params = {
            "max_new_tokens": body.get("max_tokens"),
            "temperature": body.get("temperature") or None,  # TGI: 0 means greedy
            "top_p": body.get("top_p"),
            "seed": body.get("seed"),
            "stop": body.get("stop"),
        }
        output = await self._run(inputs, params)
        if isinstance(output, Response):
            return output
        prompt_tokens = len(inputs.split())
        # TGI's chat API reports OpenAI's reasons: end of sequence and stop strings are "stop".
        reason = "length" if output.finish_reason == "length" else "stop"
        return JSONResponse(
            {
                "id": "",
                "object": "chat.completion",
                "created": 1_706_270_835,
                "model": self.state.model_id,
                "system_fingerprint": "3.3.6-dev0-native",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": output.text},
                        "logprobs": None,
                        "finish_reason": reason,
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": len(output.tokens),
                    "total_tokens": prompt_tokens + len(output.tokens),
                },
            }
        )

    async def info(self, _: Request) -> Response:
        state = self.state
        state.info_calls += 1
        return JSONResponse(
            {
                "model_id": state.model_id,
                "model_sha": state.model_sha,
                "model_pipeline_tag": "text-generation",
                "max_concurrent_requests": state.max_concurrent_requests,
                "max_best_of": 2,
                "max_stop_sequences": 4,
                "max_input_tokens": state.max_input_tokens,
                "max_total_tokens": state.max_total_tokens,
                "validation_workers": 2,
                "max_client_batch_size": 4,
                "router": "text-generation-router",
                "version": "3.3.6-dev0",
                "sha": None,
                "docker_label": None,
            }
        )

    async def health(self, _: Request) -> Response:
        if self.state.healthy:
            return Response(status_code=200)
        return Failure(503).response()

    async def metrics(self, _: Request) -> Response:
        """A few of TGI's real metric names, in the Prometheus text format its exporter writes."""
        state = self.state
        buckets = (0.5, 1.0, 5.0, 30.0)
        lines = [
            "# TYPE tgi_request_count counter",
            f"tgi_request_count {state.request_count}",
            "# TYPE tgi_request_success counter",
            f"tgi_request_success {state.success_count}",
            "# TYPE tgi_queue_size gauge",
            "tgi_queue_size 0",
            "# TYPE tgi_batch_current_size gauge",
            f"tgi_batch_current_size {state.in_flight}",
            "# TYPE tgi_request_duration histogram",
        ]
        for bound in buckets:
            count = sum(1 for d in state.durations if d <= bound)
            lines.append(f'tgi_request_duration_bucket{{le="{bound}"}} {count}')
        lines += [
            f'tgi_request_duration_bucket{{le="+Inf"}} {len(state.durations)}',
            f"tgi_request_duration_sum {sum(state.durations)}",
            f"tgi_request_duration_count {len(state.durations)}",
        ]
        return PlainTextResponse("\n".join(lines) + "\n")
