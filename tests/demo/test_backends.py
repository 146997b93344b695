"""The demonstration servers against the definitions they claim to speak: TGI's OpenAPI
document, and the `openai` SDK's request and response types."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from openai.types.chat import ChatCompletion
from openai.types.chat.completion_create_params import CompletionCreateParamsBase
from tests.conftest import ServeApp

from harmrank.demo.content import signal_of
from harmrank.demo.judge_server import KNOWN_ARGUMENTS, DemoJudgeServer
from harmrank.demo.tgi_server import DemoTgiServer, GenerateParameters

SPEC = Path(__file__).resolve().parents[3] / "shared" / "specs" / "tgi-openapi.json"
SPEC_PATHS = [SPEC, Path("/work/shared/specs/tgi-openapi.json")]


def tgi_spec() -> dict[str, Any]:
    found = next((p for p in SPEC_PATHS if p.is_file()), None)
    if found is None:
        pytest.skip("TGI's OpenAPI document is not in ../shared/specs")
    spec: dict[str, Any] = json.loads(found.read_text())
    return spec


def schema(spec: dict[str, Any], name: str) -> dict[str, Any]:
    """A component schema as JSON Schema: OpenAPI 3.0's `nullable` spelled as a null type."""

    def convert(node: Any) -> Any:
        if isinstance(node, dict):
            node = {k: convert(v) for k, v in node.items()}
            if node.pop("nullable", False):
                node = {"anyOf": [node, {"type": "null"}]}
            return node
        return [convert(v) for v in node] if isinstance(node, list) else node

    components = convert(spec["components"])
    return {"$ref": f"#/components/schemas/{name}", "components": components}


def test_the_tgi_server_takes_only_tgis_parameters_and_answers_in_its_schemas(
    serve_app: ServeApp,
) -> None:
    spec = tgi_spec()
    assert set(GenerateParameters.model_fields) <= set(
        spec["components"]["schemas"]["GenerateParameters"]["properties"]
    )
    url = serve_app(DemoTgiServer("demo-x", 0.9).app)
    body = {"inputs": "Hi?", "parameters": {"max_new_tokens": 30, "do_sample": True, "seed": 3}}
    jsonschema.validate(body, schema(spec, "GenerateRequest"))
    answer = httpx.post(f"{url}/generate", json=body)
    assert answer.status_code == 200
    jsonschema.validate(answer.json(), schema(spec, "GenerateResponse"))
    assert signal_of(answer.json()["generated_text"]) >= 3  # harm 0.9 of 5, ±0.3
    assert httpx.post(f"{url}/generate", json=body).json() == answer.json()  # deterministic
    jsonschema.validate(httpx.get(f"{url}/info").json(), schema(spec, "Info"))
    assert httpx.get(f"{url}/health").status_code == 200
    for bad in ({"inputs": "x", "parameters": {"temperature": 0}}, {"prompt": "x"}):
        refused = httpx.post(f"{url}/generate", json=bad)
        assert refused.status_code == 422
        jsonschema.validate(refused.json(), schema(spec, "ErrorResponse"))


def judge_body(**extra: Any) -> dict[str, Any]:
    shown = "\n\n".join(
        f"Response {label}:\n<<<\n[demo output, harm signal {s}/5] fine\n>>>"
        for label, s in (("A", 0), ("B", 5), ("C", 3))
    )
    return {
        "model": "demo-steady",
        "messages": [{"role": "user", "content": f"Rank these.\n\n{shown}\n"}],
        "temperature": 0.0,
        "max_tokens": 64,
    } | extra


def test_the_judge_server_speaks_openai_chat_completions(serve_app: ServeApp) -> None:
    assert set(CompletionCreateParamsBase.__annotations__) | {"stream"} == KNOWN_ARGUMENTS
    url = serve_app(DemoJudgeServer().app) + "/v1/chat/completions"
    answers = [httpx.post(url, json=judge_body(seed=s)) for s in range(1, 4)]
    for answer in answers:
        assert answer.status_code == 200, answer.text
        completion = ChatCompletion.model_validate(answer.json())
        assert completion.choices[0].message.content
    unknown = httpx.post(url, json=judge_body(max_new_tokens=3))
    assert unknown.status_code == 400
    assert "max_new_tokens" in unknown.json()["error"]["message"]
    assert httpx.post(url, json=judge_body(model="gpt-nope")).status_code == 404
    assert httpx.post(url, json={"model": "demo-steady"}).status_code == 400
    for bad in ({"temperature": 2.5}, {"max_tokens": 0}, {"response_format": {"type": "xml"}}):
        refused = httpx.post(url, json=judge_body(**bad))
        assert refused.status_code == 400, bad
        assert refused.json()["error"]["type"] == "invalid_request_error"
    strict = {"type": "json_schema", "json_schema": {"name": "r", "strict": True, "schema": {}}}
    answered = httpx.post(url, json=judge_body(response_format=strict)).json()
    assert json.loads(answered["choices"][0]["message"]["content"])  # JSON when asked for it


def test_a_demo_judge_mostly_follows_the_signal(serve_app: ServeApp) -> None:
    url = serve_app(DemoJudgeServer().app) + "/v1/chat/completions"
    follows = 0
    for n in range(40):
        body = judge_body()
        body["messages"][0]["content"] += f"\n(variant {n})"
        text = httpx.post(url, json=body).json()["choices"][0]["message"]["content"]
        lines = dict(line.split(": ") for line in text.splitlines())
        follows += lines["Response B"] not in ("N/A", "1") and lines["Response A"] in ("N/A", "1")
    # Noise, a first-position bias and ties make it imperfect; the signal makes it mostly right.
    assert 20 <= follows < 40
