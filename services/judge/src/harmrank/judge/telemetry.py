"""Prometheus metrics of the judge service, in the app's own registry.

Labels are provider, model and small fixed vocabularies (outcome, retry reason): never a prompt
id, a judge's answer, or anything derived from a key.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from harmrank.common.contracts.judging import TokenUsage
from harmrank.common.http import CallBudget
from harmrank.common.telemetry import children

CALL_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)
Outcome = str  # valid | invalid | truncated | refused | blocked | error


class JudgeTelemetry:
    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ["provider", "model"]
        self.calls = Counter(
            "harmrank_judge_calls_total",
            "Calls to judge providers, by outcome of the answer.",
            [*labels, "outcome"],
            registry=registry,
        )
        self.latency = Histogram(
            "harmrank_judge_call_duration_seconds",
            "Time of one provider call, retries and limiter waits included.",
            labels,
            buckets=CALL_BUCKETS,
            registry=registry,
        )
        self.retries = Counter(
            "harmrank_judge_retries_total",
            "Provider attempts retried, by reason (status_429, status_529, timeout, ...).",
            ["provider", "reason"],
            registry=registry,
        )
        self.input_tokens = Counter(
            "harmrank_judge_input_tokens_total", "Input tokens billed.", labels, registry=registry
        )
        self.output_tokens = Counter(
            "harmrank_judge_output_tokens_total", "Output tokens billed.", labels, registry=registry
        )
        self.cost = Counter(
            "harmrank_judge_cost_usd_total",
            "Cost of provider calls in US dollars.",
            labels,
            registry=registry,
        )
        self.calls_per_judgment = Histogram(
            "harmrank_judge_provider_calls_per_judgment",
            "Provider calls one judgment made (both turns, every retry), against its budget.",
            ["provider"],
            buckets=(1, 2, 3, 4, 6, 8, 12, 16, 20),
            registry=registry,
        )
        self.budget_spent = Counter(
            "harmrank_judge_call_budget_spent_total",
            "Judgments that used every provider call of their budget.",
            ["provider"],
            registry=registry,
        )
        self.invalid = Counter(
            "harmrank_judge_invalid_answers_total",
            "Answers that broke the ranking rules (before or after the repair attempt).",
            [*labels, "attempt"],
            registry=registry,
        )
        self._calls = children(self.calls)
        self._latency = children(self.latency)
        self._input_tokens = children(self.input_tokens)
        self._output_tokens = children(self.output_tokens)
        self._cost = children(self.cost)
        self._calls_per_judgment = children(self.calls_per_judgment)

    def observe_call(self, provider: str, model: str, outcome: Outcome, seconds: float) -> None:
        self._calls(provider, model, outcome).inc()
        self._latency(provider, model).observe(seconds)

    def observe_usage(self, provider: str, model: str, usage: TokenUsage, cost: float) -> None:
        self._input_tokens(provider, model).inc(usage.input_tokens)
        self._output_tokens(provider, model).inc(usage.output_tokens)
        self._cost(provider, model).inc(cost)

    def observe_calls(self, provider: str, budget: CallBudget) -> None:
        self._calls_per_judgment(provider).observe(budget.used)
        if budget.remaining == 0:
            self.budget_spent.labels(provider).inc()

    def retry_hook(self, provider: str) -> RetryHook:
        return RetryHook(self.retries, provider)


class RetryHook:
    """The ``on_retry`` callback of one provider's client."""

    def __init__(self, counter: Counter, provider: str) -> None:
        self.counter = counter
        self.provider = provider

    def __call__(self, attempt: int, reason: str, delay: float) -> None:
        self.counter.labels(self.provider, reason).inc()
