"""Settings of the metrics service (``HARMRANK_METRICS_*``)."""

from __future__ import annotations

from pydantic import Field

from harmrank.common.settings import ServiceSettings, settings_config


class MetricsSettings(ServiceSettings):
    model_config = settings_config("metrics")

    port: int = Field(default=8003, ge=1, le=65535)
    max_resamples: int = Field(
        default=20_000,
        ge=0,
        description="Upper bound on bootstrap resamples a request may ask for.",
    )
