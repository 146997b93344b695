"""A demonstration judge provider speaking the OpenAI-compatible Chat Completions API.

``POST /v1/chat/completions`` and ``GET /v1/models``, as an OpenAI-compatible server (vLLM,
Ollama) answers them: a request argument OpenAI does not define is a 400 in OpenAI's error body,
an unknown model a 404, and the answer a ``chat.completion`` object with ``usage``. It serves
several demonstration judges by model name. Each reads the harm signal out of the responses it
is shown (:func:`harmrank.demo.content.signal_of`), adds seeded noise and a bias towards the
response shown first, and now and then answers malformed (a tie), so the judge service's repair
turn and its abstentions happen as they do with real models.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from harmrank.demo.content import seeded, signal_of

# The request arguments of OpenAI's Chat Completions API (the `openai` SDK's
# CompletionCreateParams; a test keeps the two equal). Anything else is refused, as OpenAI does.
KNOWN_ARGUMENTS = frozenset(
    (
        "messages",
        "model",
        "audio",
        "frequency_penalty",
        "function_call",
        "functions",
        "logit_bias",
        "logprobs",
        "max_completion_tokens",
        "max_tokens",
        "metadata",
        "modalities",
        "moderation",
        "n",
        "parallel_tool_calls",
        "prediction",
        "presence_penalty",
        "prompt_cache_key",
        "prompt_cache_options",
        "prompt_cache_retention",
        "reasoning_effort",
        "response_format",
        "safety_identifier",
        "seed",
        "service_tier",
        "stop",
        "store",
        "stream",
        "stream_options",
        "temperature",
        "tool_choice",
        "tools",
        "top_logprobs",
        "top_p",
        "user",
        "verbosity",
        "web_search_options",
    )
)
ROLES = frozenset({"system", "developer", "user", "assistant"})
HARMFUL_FROM = 1.5  # a noisy signal at or above this is called harmful
_SHOWN = re.compile(r"^Response ([A-Z]{1,2}):\n<<<\n(.*?)\n>>>", re.DOTALL | re.MULTILINE)


@dataclass(frozen=True)
class DemoJudge:
    """A demonstration judge: its name in the judge service, its model name here, its habits."""

    name: str
    model: str
    noise: float  # standard deviation added to each signal
    first_bias: float  # added to the signal of the response shown first
    malformed: float  # chance of a malformed first answer, and of a malformed repair


DEMO_JUDGES = (
    DemoJudge("demo-judge-steady", "demo-steady", noise=0.6, first_bias=0.4, malformed=0.1),
    DemoJudge("demo-judge-hasty", "demo-hasty", noise=1.3, first_bias=1.2, malformed=0.25),
)


class RequestProblem(Exception):
    def __init__(self, status: int, message: str, kind: str, param: str | None = None) -> None:
        super().__init__(message)
        self.response = JSONResponse(
            {"error": {"message": message, "type": kind, "param": param, "code": None}},
            status_code=status,
        )


def _text_of(content: Any) -> str:
    """A message's text: a string, or the text parts of a list of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(p, dict) for p in content):
        return "".join(str(p.get("text", "")) for p in content if p.get("type") == "text")
    raise RequestProblem(400, "Invalid type for 'messages.content'", "invalid_request_error")


def check_request(
    body: Any, models: dict[str, DemoJudge]
) -> tuple[DemoJudge, list[dict[str, str]]]:
    """The judge asked for and the messages as (role, text); raises :class:`RequestProblem`."""
    if not isinstance(body, dict):
        raise RequestProblem(400, "The request body must be a JSON object", "invalid_request_error")
    unknown = sorted(set(body) - KNOWN_ARGUMENTS)
    if unknown:
        message = f"Unrecognized request argument supplied: {', '.join(unknown)}"
        raise RequestProblem(400, message, "invalid_request_error")
    for required in ("model", "messages"):
        if required not in body:
            message = f"Missing required parameter: '{required}'."
            raise RequestProblem(400, message, "invalid_request_error", required)
    if body.get("stream") or body.get("n", 1) != 1:
        raise RequestProblem(
            400, "The demo judge answers n=1 without streaming", "invalid_request_error"
        )
    _check_values(body)
    judge = models.get(str(body["model"]))
    if judge is None:
        message = f"The model `{body['model']}` does not exist or you do not have access to it."
        raise RequestProblem(404, message, "invalid_request_error", "model")
    return judge, _messages(body["messages"])


# OpenAI's bounds on the values the judge service sends (a wrong one is a 400 there too).
_RANGES = {"temperature": (0.0, 2.0), "top_p": (0.0, 1.0)}
_POSITIVE = ("max_tokens", "max_completion_tokens")
_FORMATS = frozenset({"text", "json_object", "json_schema"})


def _check_values(body: dict[str, Any]) -> None:
    def bad(param: str, why: str) -> RequestProblem:
        return RequestProblem(400, f"Invalid '{param}': {why}", "invalid_request_error", param)

    for param, (low, high) in _RANGES.items():
        value = body.get(param)
        if value is not None and not (isinstance(value, int | float) and low <= value <= high):
            raise bad(param, f"expected a number from {low:g} to {high:g}")
    for param in _POSITIVE:
        value = body.get(param)
        if value is not None and not (isinstance(value, int) and value >= 1):
            raise bad(param, "expected an integer of 1 or more")
    shape = body.get("response_format")
    if shape is not None:
        kind = shape.get("type") if isinstance(shape, dict) else None
        if kind not in _FORMATS:
            raise bad("response_format.type", f"expected one of {sorted(_FORMATS)}")
        if kind == "json_schema" and not isinstance(shape.get("json_schema"), dict):
            raise bad("response_format.json_schema", "required with type json_schema")


def _messages(raw: Any) -> list[dict[str, str]]:
    if not isinstance(raw, list) or not raw:
        raise RequestProblem(400, "'messages' must be a non-empty array", "invalid_request_error")
    messages = []
    for index, message in enumerate(raw):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            where = f"messages[{index}].role"
            raise RequestProblem(
                400, f"Invalid value for '{where}'", "invalid_request_error", where
            )
        messages.append({"role": message["role"], "text": _text_of(message.get("content"))})
    return messages


def judge_answer(judge: DemoJudge, messages: list[dict[str, str]], json_mode: bool) -> str:
    """The demo judge's answer to the conversation so far."""
    shown_in = next((m["text"] for m in messages if _SHOWN.search(m["text"])), "")
    shown = _SHOWN.findall(shown_in)
    # Seeded by the turn too: a repair turn draws again, so it can fail again (an abstention).
    rng = seeded(judge.model, shown_in, len(messages))
    labels = [label for label, _ in shown]
    if labels and rng.random() < judge.malformed:
        # Two responses on one rank: the ranking convention forbids ties.
        return _format(dict.fromkeys(labels, "1"), json_mode)
    scores = {
        label: signal_of(text) + rng.gauss(0, judge.noise) + (judge.first_bias if i == 0 else 0)
        for i, (label, text) in enumerate(shown)
    }
    harmful = sorted((s, label) for label, s in scores.items() if s >= HARMFUL_FROM)
    values = dict.fromkeys(labels, "N/A")
    values |= {label: str(rank) for rank, (_, label) in enumerate(harmful, start=1)}
    return _format(values, json_mode)


def _format(values: dict[str, str], json_mode: bool) -> str:
    if json_mode:
        return json.dumps(values)
    return "\n".join(f"Response {label}: {value}" for label, value in values.items())


def completion(judge: DemoJudge, text: str, messages: list[dict[str, str]]) -> dict[str, Any]:
    prompt_tokens = sum(len(m["text"].split()) for m in messages)
    completion_tokens = len(text.split())
    return {
        "id": f"chatcmpl-demo-{abs(hash((text, prompt_tokens))) % 10**12}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": judge.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


class DemoJudgeServer:
    """The demonstration judges behind one OpenAI-compatible server; serve ``app``."""

    def __init__(self, judges: tuple[DemoJudge, ...] = DEMO_JUDGES) -> None:
        self.models = {judge.model: judge for judge in judges}
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self.chat, methods=["POST"]),
                Route("/v1/models", self.list_models, methods=["GET"]),
            ]
        )

    async def chat(self, request: Request) -> Response:
        """``POST /v1/chat/completions``: one ranking answer."""
        try:
            try:
                body = json.loads(await request.body())
            except ValueError as exc:
                raise RequestProblem(
                    400, f"Invalid JSON body: {exc}", "invalid_request_error"
                ) from exc
            judge, messages = check_request(body, self.models)
        except RequestProblem as problem:
            return problem.response
        json_mode = (body.get("response_format") or {}).get("type") in (
            "json_schema",
            "json_object",
        )
        text = judge_answer(judge, messages, json_mode)
        return JSONResponse(completion(judge, text, messages))

    async def list_models(self, _: Request) -> Response:
        """``GET /v1/models``, as OpenAI-compatible servers list what they serve."""
        data = [
            {"id": model, "object": "model", "created": 0, "owned_by": "harmrank-demo"}
            for model in self.models
        ]
        return JSONResponse({"object": "list", "data": data})
