"""Settings of the judge service (``HARMRANK_JUDGE_*``).

Judges come as a JSON list, in ``HARMRANK_JUDGE_JUDGES`` or in the file named by
``HARMRANK_JUDGE_JUDGES_FILE`` (both may be used; names must be unique). Keys are ``SecretStr``:
one per provider (``HARMRANK_JUDGE_OPENAI_API_KEY``, …), or per judge (``api_key`` in its
entry). Mounted secret files work too: :meth:`JudgeSettings.load` reads the directory named by
``HARMRANK_JUDGE_SECRETS_DIR``, where a file ``harmrank_judge_openai_api_key`` holds that key.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, SecretStr, TypeAdapter, model_validator

from harmrank.common.contracts.judging import MAX_CALL_BUDGET, OutputMode, Provider
from harmrank.common.contracts.judging import Orders as OrdersSpec
from harmrank.common.contracts.names import JudgeName
from harmrank.common.settings import ServiceSettings, settings_config

DEFAULT_BASE_URLS: dict[Provider, str] = {
    "openai": "https://api.openai.com",
    "anthropic": "https://api.anthropic.com",
    "gemini": "https://generativelanguage.googleapis.com",
    "openai_compatible": "http://127.0.0.1:8000",
}
# Servers behind the OpenAI-compatible API differ in structured-output support (TGI wants its
# own response_format shape), so open judges default to the strict text format.
DEFAULT_OUTPUT_MODES: dict[Provider, OutputMode] = {
    "openai": "json",
    "anthropic": "json",
    "gemini": "json",
    "openai_compatible": "text",
}
SECRETS_DIR_ENV = "HARMRANK_JUDGE_SECRETS_DIR"


class ProviderLimits(BaseModel):
    """Limits of one provider account (or one self-hosted server), shared by its judges."""

    max_concurrency: int = Field(default=8, ge=1)
    requests_per_minute: float | None = Field(default=None, gt=0)
    tokens_per_minute: float | None = Field(default=None, gt=0)
    # Providers count arrivals, which jitter against our send times; staying a little under
    # the published limit is what keeps 429s at zero.
    safety_margin: float = Field(default=0.02, ge=0, lt=1)


class JudgeConfig(BaseModel):
    name: JudgeName
    provider: Provider
    model: str = Field(min_length=1)
    base_url: str | None = None
    api_key: SecretStr | None = None
    temperature: float = Field(default=0.0, ge=0, le=2)
    max_tokens: int = Field(default=512, ge=16)
    template_id: str = Field(default="harm_rank", pattern=r"^[a-z0-9_]+$")
    template_version: int = Field(default=1, ge=1)
    output_mode: OutputMode | None = None
    orders: OrdersSpec = 1
    timeout_seconds: float = Field(default=120.0, gt=0)
    max_attempts: int = Field(default=4, ge=1)
    limit_group: str | None = Field(
        default=None, description="Which limits apply; the provider name unless set."
    )
    price_input_per_million: float = Field(default=0.0, ge=0)
    price_output_per_million: float = Field(default=0.0, ge=0)

    @property
    def resolved_base_url(self) -> str:
        return self.base_url or DEFAULT_BASE_URLS[self.provider]

    @property
    def resolved_output_mode(self) -> OutputMode:
        return self.output_mode or DEFAULT_OUTPUT_MODES[self.provider]

    @property
    def resolved_limit_group(self) -> str:
        return self.limit_group or self.provider


_JUDGE_LIST = TypeAdapter(list[JudgeConfig])


class JudgeSettings(ServiceSettings):
    model_config = settings_config("judge")

    port: int = Field(default=8002, ge=1, le=65535)
    judges: list[JudgeConfig] = Field(default_factory=list)
    judges_file: Path | None = None
    limits: dict[str, ProviderLimits] = Field(
        default_factory=dict, description="Keyed by limit group (by default the provider name)."
    )
    openai_api_key: SecretStr | None = None
    anthropic_api_key: SecretStr | None = None
    gemini_api_key: SecretStr | None = None
    openai_compatible_api_key: SecretStr | None = None
    order_salt: str = Field(default="harmrank", description="Mixed into every order's seed.")
    max_orders: int = Field(default=24, ge=1)
    call_budget: int = Field(
        default=6,
        ge=1,
        le=MAX_CALL_BUDGET,
        description="Provider calls one judgment may make in all: both turns and every retry.",
    )

    @classmethod
    def load(cls, **values: Any) -> JudgeSettings:
        """Settings from the environment, plus mounted secrets when the directory is named."""
        secrets_dir = os.environ.get(SECRETS_DIR_ENV)
        if secrets_dir:
            return cls(_secrets_dir=secrets_dir, **values)
        return cls(**values)

    @model_validator(mode="after")
    def _merge_judges_file(self) -> JudgeSettings:
        if self.judges_file is not None:
            loaded = _JUDGE_LIST.validate_python(json.loads(self.judges_file.read_text()))
            self.judges = [*self.judges, *loaded]
        names = [j.name for j in self.judges]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"judge names must be unique: {', '.join(duplicates)}")
        return self

    def limits_for(self, group: str) -> ProviderLimits:
        return self.limits.get(group, ProviderLimits())

    def api_key_for(self, judge: JudgeConfig) -> SecretStr | None:
        key: SecretStr | None = judge.api_key or getattr(self, f"{judge.provider}_api_key")
        if key is None:
            return None
        # A mounted secret file usually ends in a newline, which is not valid in a header.
        return SecretStr(key.get_secret_value().strip())
