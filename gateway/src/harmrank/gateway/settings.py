"""Settings of the gateway and its workers (``HARMRANK_GATEWAY_*``)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from pydantic import AnyHttpUrl, Field, SecretStr

from harmrank.common.settings import ServiceSettings, settings_config


class GatewaySettings(ServiceSettings):
    model_config = settings_config("gateway")

    port: int = Field(default=8000, ge=1, le=65535)
    database_url: SecretStr | None = Field(
        default=None,
        description="Overrides HARMRANK_DATABASE_URL; default SQLite in sqlite_path.",
    )
    sqlite_path: Path = Path("harmrank.db")
    migrate_on_start: bool = Field(
        default=False,
        description="Run Alembic migrations at start-up (the local mode); in a cluster a "
        "one-shot migrate job does it instead.",
    )
    api_tokens: list[SecretStr] = Field(
        default_factory=list,
        description="Bearer tokens that may write (POST/PUT/PATCH/DELETE). Empty: writes are open, "
        "for a laptop; set them on any shared deployment.",
    )
    generator_url: AnyHttpUrl = AnyHttpUrl("http://generator:8001")
    judge_url: AnyHttpUrl = AnyHttpUrl("http://judge:8002")
    downstream_timeout_seconds: float = Field(default=600.0, gt=0)
    connect_timeout_seconds: float = Field(default=10.0, gt=0)
    call_attempts: int = Field(default=3, ge=1, description="Per downstream call, in the client.")
    worker_loops: int = Field(
        default=0, ge=0, description="Task loops run inside the gateway process (0 = none)."
    )
    lease_seconds: float = Field(default=60.0, gt=0)
    poll_interval_seconds: float = Field(default=1.0, gt=0)
    retry_base_seconds: float = Field(default=5.0, ge=0)
    retry_max_seconds: float = Field(default=600.0, ge=0)
    worker_id: str = Field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    max_text_chars: int = Field(default=100_000, ge=1)
