"""Each provider's request and response, checked against its official SDK's own types.

The stand-ins call these on every request and reply, and the request tests on every body the
judge and the generator can build, so neither can drift from what the providers accept.
"""

from __future__ import annotations

from typing import Any

from anthropic.types import Message
from anthropic.types.message_create_params import MessageCreateParamsNonStreaming
from google.genai import types as genai
from openai.types.chat import ChatCompletion
from openai.types.chat.completion_create_params import CompletionCreateParamsNonStreaming
from pydantic import BaseModel, ValidationError
from tests.sdk_types import extra_fields, type_problems

# The REST body of generateContent: the SDK's GenerateContentConfig is split over these.
_GEMINI_FIELDS: dict[str, Any] = {
    "contents": list[genai.Content],
    "generationConfig": genai.GenerationConfig,
    "systemInstruction": genai.Content,
    "safetySettings": list[genai.SafetySetting],
    "tools": list[genai.Tool],
    "toolConfig": genai.ToolConfig,
    "cachedContent": str,
}


def request_problems(provider: str, body: dict[str, Any]) -> list[str]:
    """What the provider's API would refuse in ``body`` (empty: it accepts it)."""
    if provider == "anthropic":
        return type_problems(body, MessageCreateParamsNonStreaming)
    if provider == "gemini":
        return _gemini_problems(body)
    return type_problems(body, CompletionCreateParamsNonStreaming)


def _gemini_problems(body: dict[str, Any]) -> list[str]:
    problems = [f"body.{k}: unknown field" for k in body if k not in _GEMINI_FIELDS]
    if "contents" not in body:
        problems.append("body.contents: required")
    for key, value in body.items():
        if key in _GEMINI_FIELDS:
            problems += type_problems(value, _GEMINI_FIELDS[key], f"body.{key}")
    return problems


REPLY_MODELS: dict[str, type[BaseModel]] = {
    "openai": ChatCompletion,
    "openai_compatible": ChatCompletion,
    "anthropic": Message,
    "gemini": genai.GenerateContentResponse,
}


def reply_problems(provider: str, payload: dict[str, Any]) -> list[str]:
    """How a stand-in's success body differs from the SDK's response model."""
    try:
        model = REPLY_MODELS[provider].model_validate(payload)
    except ValidationError as exc:
        return [f"reply: {err['loc']}: {err['msg']}" for err in exc.errors()]
    return extra_fields(model)
