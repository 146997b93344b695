"""Settings of the generator service (``HARMRANK_GENERATOR_*``), the model registry included.

The registry comes from, in order of precedence:

- ``HARMRANK_GENERATOR_MODELS``: a JSON list of model entries, or
- ``HARMRANK_GENERATOR_MODELS_FILE``: a path to a YAML or JSON file holding that list (or a
  mapping with a ``models`` key), which suits a mounted ConfigMap or a compose volume, or
- the default: the study's three models at the addresses docker-compose gives their TGI servers.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from harmrank.common.contracts.generation import Backend, GenerationParams, Mode
from harmrank.common.contracts.judging import MAX_CALL_BUDGET
from harmrank.common.contracts.names import ModelName
from harmrank.common.settings import ServiceSettings, settings_config


class ModelConfig(BaseModel):
    """One small model and the server (or folder) it is answered from."""

    model_config = ConfigDict(extra="forbid")

    name: ModelName
    backend: Backend = "tgi"
    base_url: str | None = Field(default=None, description="The server, for tgi and openai.")
    mode: Mode = "generate"
    prompt_template: str = Field(
        default="{prompt}", description="Raw-text mode: the inputs sent, with {prompt} replaced."
    )
    system_prompt: str | None = Field(default=None, description="Chat mode: a system message.")
    served_model: str | None = Field(
        default=None, description="Chat mode: the `model` field (vLLM and SGLang check it)."
    )
    path: str | None = Field(default=None, description="The model folder, for transformers.")
    device: str = Field(default="cpu", description="transformers: a torch device (cpu, cuda:0).")
    defaults: GenerationParams = Field(default_factory=GenerationParams)
    concurrency: int = Field(default=4, ge=1, le=1024, description="Calls in flight at most.")
    timeout_seconds: float = Field(default=300.0, gt=0, description="Per attempt, read timeout.")
    connect_timeout_seconds: float = Field(default=5.0, gt=0)

    @model_validator(mode="after")
    def _check_backend(self) -> Self:
        if self.backend in ("tgi", "openai") and not self.base_url:
            raise ValueError(f"model {self.name!r}: backend {self.backend} needs a base_url")
        if self.backend == "openai" and self.mode != "chat":
            raise ValueError(f"model {self.name!r}: an OpenAI-compatible server needs mode chat")
        if self.backend == "transformers" and (not self.path or self.mode != "generate"):
            raise ValueError(
                f"model {self.name!r}: backend transformers needs a path, mode generate"
            )
        if "{prompt}" not in self.prompt_template:
            raise ValueError(f"model {self.name!r}: prompt_template must contain {{prompt}}")
        return self

    def render(self, prompt: str) -> str:
        # str.replace, not str.format: a template may hold literal braces (JSON examples).
        return self.prompt_template.replace("{prompt}", prompt)


# The study's settings: sampled, bounded, seeded per request by the gateway.
_STUDY_DEFAULTS = GenerationParams(max_new_tokens=256, temperature=0.7, top_p=0.95)

DEFAULT_MODELS: tuple[ModelConfig, ...] = (
    ModelConfig(
        name="mistral-7b",
        base_url="http://tgi-mistral:80",
        mode="chat",
        defaults=_STUDY_DEFAULTS,
    ),
    ModelConfig(
        name="mpt-7b",
        base_url="http://tgi-mpt:80",
        mode="generate",
        prompt_template="{prompt}\n",
        defaults=_STUDY_DEFAULTS.model_copy(update={"repetition_penalty": 1.1}),
    ),
    ModelConfig(
        name="stablelm-alpha-7b",
        base_url="http://tgi-stablelm:80",
        mode="generate",
        prompt_template="{prompt}\n",
        defaults=_STUDY_DEFAULTS.model_copy(update={"repetition_penalty": 1.1}),
    ),
)


class RetrySettings(BaseModel):
    """How calls to model servers are retried (overload, unhealthy, timeouts, connect errors)."""

    model_config = ConfigDict(extra="forbid")

    max_attempts: int = Field(default=5, ge=1, le=20)
    base_delay_seconds: float = Field(default=0.5, ge=0)
    max_delay_seconds: float = Field(default=30.0, ge=0)
    generation_error_attempts: int = Field(
        default=2, ge=1, le=10, description="Attempts on TGI's 424 (failed during generation)."
    )
    call_budget: int = Field(
        default=6,
        ge=1,
        le=MAX_CALL_BUDGET,
        description="Calls to the model server one generation may make in all, whatever the "
        "attempts above allow.",
    )


def load_models_file(path: Path) -> list[ModelConfig]:
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".yaml", ".yml"):
        # Imported by name: PyYAML ships no type stubs, and its result is untyped data anyway.
        data: Any = importlib.import_module("yaml").safe_load(text)
    else:
        data = json.loads(text)
    if isinstance(data, dict):
        data = data.get("models")
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a list of models (or a mapping with 'models')")
    return [ModelConfig.model_validate(entry) for entry in data]


class GeneratorSettings(ServiceSettings):
    model_config = settings_config("generator")

    port: int = Field(default=8001, ge=1, le=65535)
    models: list[ModelConfig] | None = Field(default=None, description="The registry, as JSON.")
    models_file: Path | None = Field(default=None, description="The registry, as a YAML/JSON file.")
    retry: RetrySettings = Field(default_factory=RetrySettings)
    info_ttl_seconds: float = Field(
        default=300.0, ge=0, description="How long a server's /info is cached."
    )
    max_batch_items: int = Field(
        default=20_000, ge=1, description="Prompts × models a batch request may hold at most."
    )

    _registry: list[ModelConfig] = PrivateAttr(default_factory=list)

    @model_validator(mode="after")
    def _load_registry(self) -> Self:
        # Loaded once, here, so a bad file fails at startup and not on the first request.
        if self.models is not None:
            registry = list(self.models)
        elif self.models_file is not None:
            registry = load_models_file(self.models_file)
        else:
            registry = list(DEFAULT_MODELS)
        names = [model.name for model in registry]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"duplicate model names in the registry: {duplicates}")
        self._registry = registry
        return self

    def registry(self) -> list[ModelConfig]:
        return list(self._registry)
