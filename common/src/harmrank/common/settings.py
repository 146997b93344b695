"""Settings base for every service: environment variables with a per-service prefix.

Each service subclasses :class:`ServiceSettings` and sets ``model_config`` with its own
``env_prefix`` (``HARMRANK_<SERVICE>_``). Keys are ``SecretStr`` so they never print, and a
``secrets_dir`` lets Kubernetes or compose mount them as files.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """What every harmrank service can be told: where to listen and how to log."""

    model_config = SettingsConfigDict(env_prefix="HARMRANK_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: str = "info"
    max_body_bytes: int = Field(
        default=10 * 1024 * 1024, ge=1, description="Request bodies above this are refused (413)."
    )

    @classmethod
    def env_name(cls, field: str) -> str:
        """The environment variable that sets ``field``: what an error tells an operator to
        change (``HARMRANK_METRICS_MAX_BODY_BYTES`` for the metrics service's body limit)."""
        if field not in cls.model_fields:
            raise AttributeError(f"{cls.__name__} has no setting {field!r}")
        return f"{cls.model_config.get('env_prefix', '')}{field}".upper()


def settings_config(service: str, *, secrets_dir: str | None = None) -> SettingsConfigDict:
    """The model_config of one service's settings: prefix ``HARMRANK_<SERVICE>_``."""
    return SettingsConfigDict(
        env_prefix=f"HARMRANK_{service.upper()}_", extra="ignore", secrets_dir=secrets_dir
    )
