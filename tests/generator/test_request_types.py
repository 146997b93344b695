"""Every request the generator can send to a model server, against TGI's OpenAPI document.

Modes: raw text (``/generate``) with greedy and sampled parameters, chat with and without a
system prompt. The stand-in refuses what the document does not define, so a drift fails here.
"""

from __future__ import annotations

from typing import Any

import pytest
from tests.generator.helpers import model
from tests.generator.tgi_schema import request_problems

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
