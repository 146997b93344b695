"""Every request the generator can send to a model server, against TGI's OpenAPI document.

Modes: raw text (``/generate``) with greedy and sampled parameters, chat with and without a
system prompt. The stand-in refuses what the document does not define, so a drift fails here.
"""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator
from tests.generator.helpers import model
from tests.generator.tgi_schema import REQUESTS, _validator, request_problems

from harmrank.common.contracts.generation import GenerationParams
from harmrank.generator.tgi import chat_body, generate_body

PARAMS = [
    GenerationParams(),
    GenerationParams(temperature=0),
    GenerationParams(max_new_tokens=64, temperature=0.7, top_p=0.95, seed=7),
    GenerationParams(max_new_tokens=8, repetition_penalty=1.1, stop=["\n\n", "###"]),
]


@pytest.mark.parametrize("params", PARAMS)
def test_generate_bodies_fit_tgis_generate_request(params: GenerationParams) -> None:
    assert request_problems("/generate", generate_body("Say something.", params)) == []


@pytest.mark.parametrize("params", PARAMS)
@pytest.mark.parametrize("system", [None, "You are a helpful assistant."])
def test_chat_bodies_fit_tgis_chat_request(params: GenerationParams, system: str | None) -> None:
    config = model("m", "http://tgi", mode="chat", system_prompt=system, served_model="org/m")
    assert request_problems("/v1/chat/completions", chat_body(config, "Hi", params)) == []


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/generate", {"inputs": "x", "parameters": {"temprature": 0.5}}),
        ("/generate", {"parameters": {}}),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}], "n_ctx": 2}),
    ],
)
def test_the_check_refuses_what_tgi_does_not_define(path: str, body: dict[str, Any]) -> None:
    assert request_problems(path, body) != []


# Bodies right and wrong at every depth the components nest to (parameters, grammar, messages,
# tools): the inlined schema the stand-in checks with must answer each as the document's own
# references do, never more leniently.
_DEPTHS = [
    ("/generate", {"inputs": "x", "parameters": {"max_new_tokens": 16, "seed": 1}}),
    ("/generate", {"inputs": "x", "parameters": {"max_new_tokens": "16"}}),
    ("/generate", {"inputs": "x", "parameters": {"top_n_tokens": -1, "stop": "\n"}}),
    ("/generate", {"inputs": "x", "parameters": {"grammar": {"type": "json", "value": {}}}}),
    ("/generate", {"inputs": "x", "parameters": {"grammar": {"type": "yaml", "value": 1}}}),
    ("/generate", {"inputs": "x", "parameters": None}),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}], "model": "m"}),
    ("/v1/chat/completions", {"messages": [{"role": "user"}]}),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": [{"type": "text"}]}]}),
    (
        "/v1/chat/completions",
        {
            "messages": [{"role": "user", "content": "x"}],
            "tools": [{"type": "function", "function": {"name": "f", "arguments": 3}}],
            "tool_choice": "auto",
            "response_format": {"type": "json_object", "value": {}},
        },
    ),
    ("/v1/chat/completions", {"messages": "x", "stream_options": {"include_usage": "yes"}}),
]


@pytest.mark.parametrize(("path", "body"), _DEPTHS)
def test_the_inlined_schema_answers_as_the_documents_references(
    path: str, body: dict[str, Any]
) -> None:
    schema = _validator(REQUESTS[path]).schema
    assert isinstance(schema, dict)
    defs = schema["$defs"]
    by_reference = Draft202012Validator({"$defs": defs, "$ref": f"#/$defs/{REQUESTS[path]}"})

    def problems(validator: Draft202012Validator) -> list[tuple[str, str]]:
        errors = validator.iter_errors(body)
        return sorted((".".join(map(str, e.absolute_path)), e.message) for e in errors)

    assert problems(_validator(REQUESTS[path])) == problems(by_reference)
