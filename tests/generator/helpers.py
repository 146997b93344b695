"""Helpers the generator tests share (fixtures are in conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.generator.tgi_standin import Standin

from harmrank.generator.settings import ModelConfig, RetrySettings

StartStandin = Callable[..., tuple[Standin, str]]
StartGenerator = Callable[..., str]

# Fast retries: the schedule itself is the common policy's, tested in tests/common.
FAST_RETRY = RetrySettings(
    max_attempts=4, base_delay_seconds=0.01, max_delay_seconds=0.05, generation_error_attempts=2
)


def model(name: str, base_url: str, **overrides: Any) -> ModelConfig:
    return ModelConfig.model_validate({"name": name, "base_url": base_url, **overrides})
