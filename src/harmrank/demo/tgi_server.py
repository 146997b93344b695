"""A demonstration model server speaking Text Generation Inference's wire format.

``POST /generate``, ``GET /info`` and ``GET /health`` as TGI's OpenAPI document defines them
(``GenerateRequest`` in, ``GenerateResponse`` with ``details`` out; TGI's error body
``{"error", "error_type"}`` and its 422 for invalid input), so the generator's TGI client talks
to it exactly as to a real server. One server answers for one model, as TGI does; the replies
come from :mod:`harmrank.demo.content` and carry that model's harm signal.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from harmrank.demo.content import reply

DEMO_VERSION = "demo"
MAX_INPUT_TOKENS = 1024
MAX_TOTAL_TOKENS = 2048
Positive = Annotated[float, Field(gt=0)]


class GenerateParameters(BaseModel):
    """TGI's ``GenerateParameters``, with the bounds its OpenAPI document states."""

    model_config = ConfigDict(extra="forbid")

    adapter_id: str | None = None
    best_of: int | None = Field(default=None, gt=0)
    decoder_input_details: bool = False
    details: bool = True
    do_sample: bool = False
    frequency_penalty: float | None = Field(default=None, gt=-2)
    grammar: dict[str, Any] | None = None
    max_new_tokens: int | None = Field(default=None, ge=0)
    repetition_penalty: Positive | None = None
    return_full_text: bool | None = None
    seed: int | None = Field(default=None, gt=0)
    stop: list[str] = Field(default_factory=list, max_length=4)
    temperature: Positive | None = None
    top_k: int | None = Field(default=None, gt=0)
    top_n_tokens: int | None = Field(default=None, gt=0)
    top_p: float | None = Field(default=None, gt=0, le=1)
    truncate: int | None = Field(default=None, ge=0)
    typical_p: float | None = Field(default=None, gt=0, le=1)
    watermark: bool = False


class GenerateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    inputs: str
    parameters: GenerateParameters = Field(default_factory=GenerateParameters)


def tgi_error(status: int, message: str, error_type: str) -> JSONResponse:
    return JSONResponse({"error": message, "error_type": error_type}, status_code=status)


def _problem(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"Input validation error: `{where}`: {first['msg']}"


def _details(text: str, count: int, finish: str, seed: int | None) -> dict[str, Any]:
    tokens = [
        {"id": i, "text": (" " if i else "") + word, "logprob": -0.5, "special": False}
        for i, word in enumerate(text.split())
    ]
    return {
        "finish_reason": finish,
        "generated_tokens": count,
        "prefill": [],
        "seed": seed,
        "tokens": tokens,
    }


class DemoTgiServer:
    """One demonstration model behind TGI's routes; ``app`` is the ASGI app to serve."""

    def __init__(self, model: str, harm: float) -> None:
        self.model = model
        self.harm = harm
        self.app = Starlette(
            routes=[
                Route("/generate", self.generate, methods=["POST"]),
                Route("/info", self.info, methods=["GET"]),
                Route("/health", self.health, methods=["GET"]),
            ]
        )

    async def generate(self, request: Request) -> Response:
        """TGI's ``POST /generate``: one completion of ``inputs``."""
        try:
            body = GenerateRequest.model_validate(json.loads(await request.body()))
        except ValueError as exc:
            message = _problem(exc) if isinstance(exc, ValidationError) else str(exc)
            return tgi_error(422, message, "validation")
        params = body.parameters
        given = len(body.inputs.split())
        limit = params.max_new_tokens if params.max_new_tokens is not None else 1024
        if given + limit > MAX_TOTAL_TOKENS:
            message = f"`inputs` tokens + `max_new_tokens` must be <= {MAX_TOTAL_TOKENS}"
            return tgi_error(422, f"Input validation error: {message}", "validation")
        seed = params.seed if params.do_sample else None
        text, count = reply(self.harm, body.inputs, seed, limit)
        finish = "length" if count >= limit else "eos_token"
        answer: dict[str, Any] = {"generated_text": text}
        if params.details:
            answer["details"] = _details(text, count, finish, seed)
        headers = {"x-prompt-tokens": str(given), "x-generated-tokens": str(count)}
        return JSONResponse(answer, headers=headers)

    async def info(self, _: Request) -> Response:
        """TGI's ``GET /info``; the model id says plainly that this is a demonstration."""
        return JSONResponse(
            {
                "model_id": f"harmrank-demo/{self.model}",
                "model_sha": None,
                "model_pipeline_tag": "text-generation",
                "max_concurrent_requests": 128,
                "max_best_of": 2,
                "max_stop_sequences": 4,
                "max_input_tokens": MAX_INPUT_TOKENS,
                "max_total_tokens": MAX_TOTAL_TOKENS,
                "validation_workers": 1,
                "max_client_batch_size": 4,
                "router": "harmrank-demo-tgi",
                "version": DEMO_VERSION,
                "sha": None,
                "docker_label": None,
            }
        )

    async def health(self, _: Request) -> Response:
        """TGI's ``GET /health``: 200 with an empty body when healthy."""
        return Response(status_code=200)
