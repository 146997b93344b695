"""The generator's logic: the registry, per-model concurrency, bounded retries, batches.

Concurrency is bounded per model by one semaphore shared by every request this process serves,
single calls and batches alike, so a batch of thousands never has more than the model's limit
in flight against its server.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from harmrank.common.contracts.generation import (
    BatchErrorLine,
    BatchRequest,
    BatchResultLine,
    BatchSummaryLine,
    GenerateRequest,
    GenerationParams,
    GenerationResult,
    LineError,
    ModelEntry,
    ModelList,
)
from harmrank.common.contracts.judging import MAX_CALL_BUDGET
from harmrank.common.errors import GenerationFailed, HarmrankError, InvalidInput, NotFound
from harmrank.common.http import CallBudget, RetryPolicy
from harmrank.generator.backends import Backend, Generation, build_backend, supported_params
from harmrank.generator.settings import GeneratorSettings
from harmrank.generator.telemetry import GeneratorTelemetry

BatchItemLine = BatchResultLine | BatchErrorLine


class GeneratorService:
    def __init__(
        self, settings: GeneratorSettings, telemetry: GeneratorTelemetry, backends: list[Backend]
    ) -> None:
        self.settings = settings
        self.telemetry = telemetry
        self.backends = {backend.config.name: backend for backend in backends}
        self._slots = {b.config.name: asyncio.Semaphore(b.config.concurrency) for b in backends}
        retry = settings.retry
        # Only the backoff schedule is used here: the 424 retries the transport does not do.
        self._generation_policy = RetryPolicy(
            max_attempts=retry.generation_error_attempts,
            base_delay=retry.base_delay_seconds,
            max_delay=retry.max_delay_seconds,
        )

    @classmethod
    def from_settings(
        cls, settings: GeneratorSettings, telemetry: GeneratorTelemetry
    ) -> GeneratorService:
        backends = [
            build_backend(
                config,
                settings.retry,
                on_retry=telemetry.on_retry(config.name),
                info_ttl=settings.info_ttl_seconds,
            )
            for config in settings.registry()
        ]
        return cls(settings, telemetry, backends)

    async def aclose(self) -> None:
        for backend in self.backends.values():
            await backend.aclose()

    def _backend(self, name: str) -> Backend:
        backend = self.backends.get(name)
        if backend is None:
            raise NotFound(f"unknown model {name!r}; known: {sorted(self.backends)}")
        return backend

    async def generate(self, request: GenerateRequest) -> GenerationResult:
        backend = self._backend(request.model)
        params = supported_params(backend.config, request.params.over(backend.config.defaults))
        async with self._slots[request.model]:
            with self.telemetry.track(request.model):
                started = time.perf_counter()
                budget = CallBudget(
                    min(
                        request.max_upstream_calls or MAX_CALL_BUDGET,
                        self.settings.retry.call_budget,
                    )
                )
                try:
                    generation = await self._generate_with_retries(
                        backend, request.prompt, params, budget
                    )
                finally:
                    self.telemetry.calls_used(request.model, budget.used)
                latency = time.perf_counter() - started
        self.telemetry.tokens(request.model, generation.generated_tokens, generation.prompt_tokens)
        return await self._result(backend, request, params, generation, latency)

    async def _generate_with_retries(
        self, backend: Backend, prompt: str, params: GenerationParams, budget: CallBudget
    ) -> Generation:
        """TGI's 424 (failed during generation, e.g. out of memory) is retried, but only a few
        times: unlike overload it is often the prompt itself that makes it fail again."""
        policy = self._generation_policy
        for attempt in range(1, policy.max_attempts + 1):
            try:
                return await backend.generate(prompt, params, budget)
            except GenerationFailed:
                if attempt == policy.max_attempts or budget.remaining == 0:
                    raise
            self.telemetry.retries.labels(backend.config.name, "status_424").inc()
            await policy.sleep(policy.backoff(attempt))
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _result(
        self,
        backend: Backend,
        request: GenerateRequest,
        params: GenerationParams,
        generation: Generation,
        latency: float,
    ) -> GenerationResult:
        info = await backend.server_info()
        return GenerationResult(
            model=request.model,
            prompt_id=request.prompt_id,
            text=generation.text,
            finish_reason=generation.finish_reason,
            generated_tokens=generation.generated_tokens,
            prompt_tokens=generation.prompt_tokens,
            latency_seconds=latency,
            seed=generation.seed,
            model_id=(info.model_id if info else None) or generation.served_model,
            model_revision=info.model_revision if info else None,
            backend=backend.config.backend,
            mode=backend.config.mode,
            params=params,
        )

    # --- batches ---------------------------------------------------------------------------

    def check_batch(self, request: BatchRequest) -> None:
        """Refuse a batch up front (before the stream starts) when it cannot be right."""
        for name in request.models:
            self._backend(name)
        total = len(request.prompts) * len(request.models)
        if total > self.settings.max_batch_items:
            raise InvalidInput(
                f"batch of {total} items exceeds the limit of {self.settings.max_batch_items}"
            )

    async def _batch_item(
        self, request: BatchRequest, index: int, queue: asyncio.Queue[BatchItemLine]
    ) -> None:
        prompt = request.prompts[index // len(request.models)]
        model = request.models[index % len(request.models)]
        single = GenerateRequest(
            model=model, prompt=prompt.text, prompt_id=prompt.id, params=request.params
        )
        line: BatchItemLine
        try:
            result = await self.generate(single)
            line = BatchResultLine(index=index, prompt_id=prompt.id, model=model, result=result)
        except HarmrankError as exc:
            error = LineError(
                error=exc.message, error_type=exc.error_type, status_code=exc.status_code
            )
            line = BatchErrorLine(index=index, prompt_id=prompt.id, model=model, error=error)
        except Exception:  # one bad item must not end the stream; never leak its text
            error = LineError(error="internal error", error_type="internal", status_code=500)
            line = BatchErrorLine(index=index, prompt_id=prompt.id, model=model, error=error)
        await queue.put(line)

    async def stream_batch(
        self, request: BatchRequest
    ) -> AsyncIterator[BatchItemLine | BatchSummaryLine]:
        """Every (prompt, model) item, yielded as it finishes, then a summary line.

        Tasks are plain asyncio tasks cancelled in ``finally``: if the client goes away, the
        stream is closed and no call is left running against the model servers.
        """
        total = len(request.prompts) * len(request.models)
        queue: asyncio.Queue[BatchItemLine] = asyncio.Queue()
        tasks = [asyncio.create_task(self._batch_item(request, i, queue)) for i in range(total)]
        failed = 0
        try:
            for _ in range(total):
                line = await queue.get()
                failed += isinstance(line, BatchErrorLine)
                yield line
            yield BatchSummaryLine(total=total, succeeded=total - failed, failed=failed)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    # --- the registry ----------------------------------------------------------------------

    async def list_models(self) -> ModelList:
        entries = await asyncio.gather(*(self._entry(b) for b in self.backends.values()))
        return ModelList(models=list(entries))

    async def _entry(self, backend: Backend) -> ModelEntry:
        reason, info = await asyncio.gather(backend.health(), backend.server_info())
        config = backend.config
        return ModelEntry(
            name=config.name,
            backend=config.backend,
            mode=config.mode,
            base_url=config.base_url,
            defaults=config.defaults,
            concurrency=config.concurrency,
            healthy=reason is None,
            health_reason=reason,
            server=info,
        )
