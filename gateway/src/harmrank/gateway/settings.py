"""Settings of the gateway and its workers (``HARMRANK_GATEWAY_*``)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from pydantic import AnyHttpUrl, Field, SecretStr, field_validator, model_validator

from harmrank.common.contracts.judging import MAX_CALL_BUDGET
from harmrank.common.settings import ServiceSettings, settings_config

DEFAULT_EXEMPT_PREFIXES: tuple[str, ...] = ("/annotate/",)


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
    read_tokens: list[SecretStr] = Field(
        default_factory=list,
        description="Bearer tokens that may only read: a write with one is a 403.",
    )
    require_token_for_reads: bool = Field(
        default=False,
        description="Reads need a token too (a read or a write token); probes, /metrics and "
        "the OpenAPI document stay open.",
    )
    auth_exempt_prefixes: tuple[str, ...] = Field(
        default=DEFAULT_EXEMPT_PREFIXES,
        description="Path prefixes the bearer-token check skips: routes with their own "
        "authentication (the annotation page signs annotators in itself). Matched by whole "
        "path segment; a prefix that is not an absolute path below the root is refused.",
    )
    sign_in_attempts: int = Field(
        default=10,
        ge=1,
        description="Failed annotator sign-ins allowed per client address within "
        "sign_in_window_seconds; past them a sign-in is a 429 with Retry-After.",
    )
    sign_in_window_seconds: float = Field(default=60.0, gt=0)
    report_max_resamples: int = Field(
        default=10_000,
        ge=0,
        description="Upper bound on the bootstrap resamples a report or agreement request may "
        "ask for (the work is CPU-bound).",
    )
    report_processes: int = Field(
        default=2,
        ge=1,
        description="Worker processes that compute reports (dataset reports, agreement, a "
        "run's page), each one report at a time; others wait their turn.",
    )
    report_queue: int = Field(
        default=8,
        ge=0,
        description="Reports that may wait for a worker process; past them a report request "
        "is a 503 reports_busy with Retry-After. A request for a report being computed waits "
        "for that one and takes no place.",
    )
    report_cache_entries: int = Field(
        default=32,
        ge=0,
        description="Computed reports kept, by dataset (or run) and parameters: a repeat is "
        "answered from memory while the dataset's prompts, responses and rankings are "
        "unchanged (any upload, import or new ranking makes it computed again).",
    )
    parse_processes: int = Field(
        default=2,
        ge=1,
        description="Worker processes that read uploaded files (datasets, rankings), one file "
        "at a time each; the gateway's event loop never parses.",
    )
    generator_url: AnyHttpUrl = AnyHttpUrl("http://generator:8001")
    judge_url: AnyHttpUrl = AnyHttpUrl("http://judge:8002")
    metrics_url: AnyHttpUrl = Field(
        default=AnyHttpUrl("http://metrics:8003"),
        description="The metrics service a run's score task sends its rankings to.",
    )
    downstream_timeout_seconds: float = Field(default=600.0, gt=0)
    connect_timeout_seconds: float = Field(default=10.0, gt=0)
    call_attempts: int = Field(
        default=3, ge=1, le=10, description="Per downstream call: connections that failed."
    )
    task_call_budget: int = Field(
        default=16,
        ge=1,
        le=60,
        description="Upstream calls (provider or model server) one task may make in all.",
    )
    attempt_call_budget: int = Field(
        default=4,
        ge=1,
        le=MAX_CALL_BUDGET,
        description="Upstream calls one attempt of a task may make (its share of the above).",
    )
    worker_loops: int = Field(
        default=0,
        ge=0,
        description="Tasks the gateway works at once in its own process (the concurrency of its "
        "in-process worker, so the most downstream calls it makes at once; 0 = no worker).",
    )
    claim_batch: int | None = Field(
        default=None,
        ge=1,
        description="The most tasks a worker claims in one transaction (unset: a quarter of "
        "its concurrency, at least 16); it holds twice as many (capped by its concurrency) "
        "claimed ahead of a free slot, one batch for each of the two settle transactions it may "
        "have open. A claim costs a few statements whatever its size, so larger claims cost "
        "fewer per task; the tasks in flight stay bounded by the worker's concurrency.",
    )
    lease_seconds: float = Field(default=60.0, gt=0)
    poll_interval_seconds: float = Field(default=1.0, gt=0)
    retry_base_seconds: float = Field(default=5.0, ge=0)
    retry_max_seconds: float = Field(default=600.0, ge=0)
    worker_id: str = Field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    max_text_chars: int = Field(default=100_000, ge=1)
    telemetry_interval_seconds: float = Field(
        default=5.0,
        gt=0,
        description="How often the task-queue metrics are read from the database.",
    )

    @field_validator("auth_exempt_prefixes")
    @classmethod
    def _exempt_prefixes_name_a_part(cls, prefixes: tuple[str, ...]) -> tuple[str, ...]:
        for prefix in prefixes:
            # "" or "/" would exempt every route, opening every write; a relative one never
            # matches. Both are mistakes to refuse, not settings to honour silently.
            if not prefix.startswith("/") or not prefix.strip("/"):
                raise ValueError(
                    f"auth_exempt_prefixes: {prefix!r} must be an absolute path below the root "
                    "(like '/annotate/'); it would exempt every route or none"
                )
        return prefixes

    @model_validator(mode="after")
    def _reads_need_a_token_to_exist(self) -> GatewaySettings:
        if self.require_token_for_reads and not (self.api_tokens or self.read_tokens):
            raise ValueError(
                "require_token_for_reads needs api_tokens or read_tokens: no read could pass"
            )
        return self
