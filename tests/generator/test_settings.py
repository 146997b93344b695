"""The model registry from settings: default, environment variable, YAML or JSON file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from harmrank.generator.settings import GeneratorSettings, ModelConfig


def test_default_registry_is_the_studys_three_models_on_compose_addresses() -> None:
    registry = {m.name: m for m in GeneratorSettings().registry()}

    assert registry["mistral-7b"].base_url == "http://tgi-mistral:80"
    assert registry["mpt-7b"].base_url == "http://tgi-mpt:80"
    assert registry["stablelm-alpha-7b"].base_url == "http://tgi-stablelm:80"
    assert registry["mistral-7b"].mode == "chat"
    assert {registry["mpt-7b"].mode, registry["stablelm-alpha-7b"].mode} == {"generate"}
    assert all(m.backend == "tgi" and m.defaults.max_new_tokens for m in registry.values())


def test_registry_from_environment_json(monkeypatch: pytest.MonkeyPatch) -> None:
    models = [
        {
            "name": "llama",
            "backend": "openai",
            "base_url": "http://vllm:8000",
            "mode": "chat",
            "served_model": "meta-llama/Llama-3.1-8B-Instruct",
            "defaults": {"max_new_tokens": 32, "temperature": 0.5, "seed": 1, "stop": ["\n\n"]},
            "concurrency": 16,
            "timeout_seconds": 60,
        }
    ]
    monkeypatch.setenv("HARMRANK_GENERATOR_MODELS", json.dumps(models))
    monkeypatch.setenv("HARMRANK_GENERATOR_RETRY", '{"max_attempts": 2}')

    settings = GeneratorSettings()

    (llama,) = settings.registry()
    assert llama.served_model == "meta-llama/Llama-3.1-8B-Instruct"
    assert llama.defaults.stop == ["\n\n"]
    assert (llama.concurrency, llama.timeout_seconds) == (16, 60)
    assert settings.retry.max_attempts == 2


def test_registry_from_yaml_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "models.yaml"
    path.write_text(
        "models:\n"
        "  - name: mpt-7b\n"
        "    base_url: http://localhost:8081\n"
        '    prompt_template: "Question: {prompt}\\nAnswer:"\n'
        "    defaults: {max_new_tokens: 128, repetition_penalty: 1.2}\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("HARMRANK_GENERATOR_MODELS_FILE", str(path))

    (mpt,) = GeneratorSettings().registry()

    assert mpt.render("hi") == "Question: hi\nAnswer:"
    assert mpt.defaults.repetition_penalty == 1.2


def test_registry_from_json_file_and_literal_braces(tmp_path: Path) -> None:
    path = tmp_path / "models.json"
    entry = {"name": "m", "base_url": "http://x", "prompt_template": '{"q": "{prompt}"}'}
    path.write_text(json.dumps([entry]), encoding="utf-8")

    (m,) = GeneratorSettings(models_file=path).registry()

    assert m.render("hi") == '{"q": "hi"}'


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ({"name": "a", "backend": "tgi"}, "needs a base_url"),
        ({"name": "a", "backend": "openai", "base_url": "http://x"}, "needs mode chat"),
        ({"name": "a", "backend": "transformers"}, "needs a path"),
        ({"name": "a", "base_url": "http://x", "prompt_template": "no slot"}, "{prompt}"),
        ({"name": "a b", "base_url": "http://x"}, "pattern"),
    ],
)
def test_bad_entries_are_refused(entry: dict[str, str], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem.replace("{", r"\{").replace("}", r"\}")):
        ModelConfig.model_validate(entry)


def test_duplicate_names_are_refused() -> None:
    entry = ModelConfig(name="a", base_url="http://x")
    with pytest.raises(ValidationError, match="duplicate model names"):
        GeneratorSettings(models=[entry, entry])
