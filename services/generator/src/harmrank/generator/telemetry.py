"""The generator's Prometheus metrics, registered in the app's own registry.

Labels are registry model names and small fixed sets (outcome is ``ok`` or an error type;
reason is a retry reason such as ``status_429`` or ``timeout``), never prompts or ids.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from harmrank.common.errors import HarmrankError
from harmrank.common.http import OnRetry
from harmrank.common.telemetry import children

# LLM calls on a busy 7B server take seconds to minutes; the top bucket is the default timeout.
CALL_COUNT_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 20)
DURATION_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 180.0, 300.0)


class GeneratorTelemetry:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "harmrank_generator_requests_total",
            "Generation calls, by model and outcome (ok or the error type).",
            ["model", "outcome"],
            registry=registry,
        )
        self.duration = Histogram(
            "harmrank_generator_request_duration_seconds",
            "Time of a generation call to the model server, retries included.",
            ["model"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.generated_tokens = Counter(
            "harmrank_generator_generated_tokens_total",
            "Tokens generated, as the model server reports them.",
            ["model"],
            registry=registry,
        )
        self.prompt_tokens = Counter(
            "harmrank_generator_prompt_tokens_total",
            "Prompt tokens, as the model server reports them.",
            ["model"],
            registry=registry,
        )
        self.in_flight = Gauge(
            "harmrank_generator_requests_in_flight",
            "Generation calls in flight to the model server now.",
            ["model"],
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.calls_per_generation = Histogram(
            "harmrank_generator_upstream_calls_per_generation",
            "Calls to the model server one generation made (retries included), against its "
            "call budget.",
            ["model"],
            buckets=CALL_COUNT_BUCKETS,
            registry=registry,
        )
        self.retries = Counter(
            "harmrank_generator_retries_total",
            "Retried calls to a model server, by reason (status_429, timeout, ...).",
            ["model", "reason"],
            registry=registry,
        )
        self._requests = children(self.requests)
        self._duration = children(self.duration)
        self._generated_tokens = children(self.generated_tokens)
        self._prompt_tokens = children(self.prompt_tokens)
        self._in_flight = children(self.in_flight)
        self._calls_per_generation = children(self.calls_per_generation)

    def on_retry(self, model: str) -> OnRetry:
        def record(_attempt: int, reason: str, _delay: float) -> None:
            self.retries.labels(model, reason).inc()

        return record

    @contextmanager
    def track(self, model: str) -> Iterator[None]:
        """Count one call: in flight while it runs, then its duration and outcome."""
        in_flight = self._in_flight(model)
        in_flight.inc()
        started = time.perf_counter()
        outcome = "internal"
        try:
            yield
            outcome = "ok"
        except HarmrankError as exc:
            outcome = exc.error_type
            raise
        finally:
            in_flight.dec()
            self._duration(model).observe(time.perf_counter() - started)
            self._requests(model, outcome).inc()

    def tokens(self, model: str, generated: int | None, prompt: int | None) -> None:
        if generated:
            self._generated_tokens(model).inc(generated)
        if prompt:
            self._prompt_tokens(model).inc(prompt)

    def calls_used(self, model: str, calls: int) -> None:
        """The upstream calls one generation made."""
        self._calls_per_generation(model).observe(calls)
