"""Settings of the metrics service (``HARMRANK_METRICS_*``)."""

from __future__ import annotations

from pydantic import Field

from harmrank.common.settings import ServiceSettings, settings_config


class MetricsSettings(ServiceSettings):
    model_config = settings_config("metrics")

    port: int = Field(default=8003, ge=1, le=65535)
    # The score task sends a whole run's rankings in one report request, by design: 110-130
    # bytes a prompt with 3 models, 2 judges, 3 orders shown and short prompt ids (22-26 MB at
    # 200,000 prompts), more with long ids and categories; the 10 MiB every service takes
    # failed runs past about 80,000 prompts. 64 MiB takes 200,000 prompts at up to 330 bytes
    # each. What bounds a run is the memory its report needs (the README states it), not these
    # bytes; compressing them would not move this limit, which must bound the body as parsed.
    max_body_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=1,
        description="Request bodies above this are refused (413); a run's report request is "
        "about 110-300 bytes a prompt.",
    )
    max_resamples: int = Field(
        default=20_000,
        ge=0,
        description="Upper bound on bootstrap resamples a request may ask for.",
    )
